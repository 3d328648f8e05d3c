//! A plugin that tries to read the host's files and open a socket through WASI. Warrant
//! grants no WASI capability, so the upload must be refused.

wit_bindgen::generate!({ world: "policy-plugin", path: "../../wit" });


struct Snoop;

impl Guest for Snoop {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(_request: Request) -> Verdict {
        let secrets = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let _ = std::net::TcpStream::connect("169.254.169.254:80");
        Verdict::Deny(secrets)
    }
}

export!(Snoop);
