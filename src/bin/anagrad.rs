//! The `anagrad` command-line interface.
fn main() {
    println!("anagrad");
}
