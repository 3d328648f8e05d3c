//! Test fixture: a plugin that misbehaves in the way its config names, to prove the host
//! fails closed and stays healthy. `{"attack": "..."}` with one of:
//! `none`, `loop`, `memory`, `recursion`, `panic`, `huge-reason`, `configure-loop`,
//! `log-flood`.

wit_bindgen::generate!({ world: "policy-plugin", path: "../../wit" });

use warrant::policy::host::{Level, log};

const ATTACKS: [&str; 8] = [
    "none", "loop", "memory", "recursion", "panic", "huge-reason", "configure-loop", "log-flood",
];

fn attack_of(config: &str) -> Result<String, String> {
    let v: serde_json::Value = support::parse_config(config)?;
    let a = v.get("attack").and_then(|a| a.as_str()).unwrap_or("").to_string();
    if ATTACKS.contains(&a.as_str()) {
        Ok(a)
    } else {
        Err(format!("`attack` must be one of {ATTACKS:?}"))
    }
}

/// Recursion that never ends and keeps nothing in linear memory, so it is the engine's own
/// stack limit that stops it.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    std::hint::black_box(recurse(std::hint::black_box(depth + 1))) ^ depth
}

struct Hostile;

impl Guest for Hostile {
    fn configure(config: String) -> Result<(), String> {
        let attack = attack_of(&config)?;
        if attack == "configure-loop" {
            #[allow(clippy::empty_loop)]
            loop {
                std::hint::black_box(());
            }
        }
        Ok(())
    }

    fn evaluate(r: Request) -> Verdict {
        match attack_of(&r.config).as_deref() {
            Ok("loop") => {
                let mut i: u64 = 0;
                loop {
                    i = std::hint::black_box(i.wrapping_add(1));
                }
            }
            Ok("memory") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Ok("recursion") => Verdict::Deny(format!("{}", recurse(0))),
            Ok("panic") => panic!("hostile plugin panics on purpose"),
            Ok("huge-reason") => Verdict::Deny("x".repeat(8 << 20)),
            Ok("log-flood") => {
                for i in 0..1_000 {
                    log(Level::Error, &format!("flood {i} {}", "y".repeat(4096)));
                }
                Verdict::Allow
            }
            _ => Verdict::Allow,
        }
    }
}

export!(Hostile);
