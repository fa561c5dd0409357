// refinery embeds `migrations/` at compile time; without this a new migration file
// would not trigger a rebuild and could be silently left out of the binary.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
