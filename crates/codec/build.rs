//! Builds the C++ frame that catches libheif's exceptions (src/heif/guard.cpp).

fn main() {
    println!("cargo:rerun-if-changed=src/heif/guard.cpp");
    cc::Build::new()
        .cpp(true)
        .file("src/heif/guard.cpp")
        .compile("thumbfs_heif_guard");
}
