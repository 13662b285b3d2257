//! Names the mechanism families once, as cfgs (see `build/families.rs`).

#[path = "build/families.rs"]
mod families;

fn main() {
    families::emit();
}
