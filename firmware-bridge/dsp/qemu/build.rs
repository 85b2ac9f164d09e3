//! Puts the memory map where the linker (cortex-m-rt's link.x) finds it: lm3s6965 for thumbv7m (Cortex-M3),
//! nRF51 for thumbv6m (Cortex-M0, the RP2040's instruction set).
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let target = env::var("TARGET").unwrap_or_default();
    // (Not named memory.x: the linker would find that one in the package folder first, whatever the target.)
    let src = if target.starts_with("thumbv6m") {
        "memory-microbit.x"
    } else {
        "memory-lm3s6965.x"
    };
    fs::copy(src, out.join("memory.x")).expect("copy memory map");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-env=DSP_QEMU_TARGET={target}");
    println!("cargo:rerun-if-changed=memory-lm3s6965.x");
    println!("cargo:rerun-if-changed=memory-microbit.x");
    println!("cargo:rerun-if-changed=build.rs");
}
