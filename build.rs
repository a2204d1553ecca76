//! Builds the C++ frame that catches libheif's exceptions (src/codec/heif/guard.cpp).

fn main() {
    println!("cargo:rerun-if-changed=src/codec/heif/guard.cpp");
    cc::Build::new()
        .cpp(true)
        .file("src/codec/heif/guard.cpp")
        .compile("thumbfs_heif_guard");
}
