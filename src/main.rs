fn main() {
    std::process::exit(clinvk::cli::main());
}
