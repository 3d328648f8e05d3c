//! Redirect URIs: registered exactly, compared exactly. HTTPS, or plain HTTP only on a loopback
//! address, where any port matches (RFC 8252 §7.3: native apps bind an ephemeral port).

use url::Url;

/// Why a redirect URI cannot be registered.
pub fn check_registrable(uri: &str) -> Result<(), String> {
    let url = Url::parse(uri).map_err(|e| format!("`{uri}` is not a URL: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("`{uri}` must not have a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{uri}` must not carry credentials"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(format!(
            "`{uri}`: plain http is allowed only for loopback addresses (127.0.0.1, [::1], localhost)"
        )),
        other => Err(format!(
            "`{uri}`: scheme `{other}` is not allowed; use https"
        )),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The registered URI a presented one matches, if any: character for character, except that a
/// loopback http URI matches on any port.
pub fn find_match<'a>(registered: &'a [String], presented: &str) -> Option<&'a String> {
    if let Some(exact) = registered.iter().find(|r| r.as_str() == presented) {
        return Some(exact);
    }
    let p = Url::parse(presented).ok()?;
    if p.scheme() != "http" || !is_loopback(&p) {
        return None;
    }
    registered.iter().find(|r| {
        Url::parse(r).is_ok_and(|mut r| {
            if r.scheme() != "http" || !is_loopback(&r) || r.host() != p.host() {
                return false;
            }
            let mut p = p.clone();
            if r.set_port(None).is_err() || p.set_port(None).is_err() {
                return false;
            }
            // Compare the raw strings apart from the port, so no normalisation can be abused.
            r.as_str() == p.as_str() && same_apart_from_port(presented, &p)
        })
    })
}

/// Guards against a parser normalising away a difference: the presented string, with its
/// port removed, must equal its own normalised form.
fn same_apart_from_port(presented: &str, normalised: &Url) -> bool {
    let Some(rest) = presented.strip_prefix("http://") else {
        return false;
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') || authority.starts_with('[') => {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                authority
            }
        }
        _ => authority,
    };
    let tail = if tail.is_empty() { "/" } else { tail };
    format!("http://{host}{tail}") == normalised.as_str()
}

/// The host shown to a user on the consent page.
pub fn display_host(uri: &str) -> String {
    Url::parse(uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| uri.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        assert!(check_registrable("https://app.example/cb").is_ok());
        assert!(check_registrable("http://127.0.0.1:9000/cb").is_ok());
        assert!(check_registrable("http://[::1]/cb").is_ok());
        assert!(check_registrable("http://localhost/cb").is_ok());
        assert!(check_registrable("http://app.example/cb").is_err());
        assert!(check_registrable("https://app.example/cb#x").is_err());
        assert!(check_registrable("javascript:alert(1)").is_err());
        assert!(check_registrable("https://u:p@app.example/cb").is_err());
    }

    #[test]
    fn matching_is_exact_except_loopback_ports() {
        let reg = vec![
            "https://app.example/cb".to_string(),
            "http://127.0.0.1/cb".to_string(),
        ];
        assert!(find_match(&reg, "https://app.example/cb").is_some());
        assert!(find_match(&reg, "https://app.example/cb/").is_none());
        assert!(find_match(&reg, "https://app.example/cb?x=1").is_none());
        assert!(find_match(&reg, "https://APP.example/cb").is_none());
        assert!(find_match(&reg, "https://app.example.evil/cb").is_none());
        assert!(find_match(&reg, "http://127.0.0.1:53123/cb").is_some());
        assert!(find_match(&reg, "http://127.0.0.1:53123/cb/../x").is_none());
        assert!(find_match(&reg, "http://127.0.0.1:53123/other").is_none());
        assert!(find_match(&reg, "http://localhost:53123/cb").is_none());
    }
}
