//! The `warrant` binary: parses the command line and hands over to [`warrant::cli`].

fn main() -> anyhow::Result<()> {
    warrant::cli::main()
}
