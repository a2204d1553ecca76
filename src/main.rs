//! The `thumbfs` command line.

fn main() {
    eprintln!("thumbfs: command line not built yet");
    std::process::exit(2);
}
