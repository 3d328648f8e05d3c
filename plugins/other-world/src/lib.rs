//! A well-formed component that implements some other world, not `warrant:policy`.

wit_bindgen::generate!({ world: "calculator", path: "wit" });

struct Calculator;

impl Guest for Calculator {
    fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }
}

export!(Calculator);
