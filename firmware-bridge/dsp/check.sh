#!/usr/bin/env bash
# linekeeper-dsp checks, for tests/run.sh and CI: the host tests, an RP2040 (thumbv6m) build of the library, and
# the detection tests under qemu on a Cortex-M3 and on a Cortex-M0 (the RP2040's instruction set) with their
# instructions-per-sample figures.
# Installs what is missing (rust targets via rustup, qemu-system-arm via apt-get); fails loudly when something
# cannot be had, never skips. Needs no stdin. Set DSP_NICE=0 to run at normal priority (default: nice 15).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
nice_lvl="${DSP_NICE:-15}"
log="$(mktemp -d)"
trap 'rm -rf "$log"' EXIT

say() { echo "check.sh: $*"; }
die() { echo "check.sh: FAILED: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
run() { nice -n "$nice_lvl" "$@" </dev/null; }

have cargo || die "cargo is not installed (install Rust with rustup: https://rustup.rs)"

for t in thumbv7m-none-eabi thumbv6m-none-eabi; do
    if ! rustc --print sysroot >/dev/null 2>&1 || ! ls "$(rustc --print sysroot)/lib/rustlib/$t" >/dev/null 2>&1; then
        have rustup || die "the Rust target $t is missing and rustup is not there to add it"
        say "adding Rust target $t"
        rustup target add "$t" </dev/null || die "rustup target add $t failed (no network to the Rust distribution?)"
    fi
done

if ! have qemu-system-arm; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        have sudo || die "qemu-system-arm is missing and this user cannot install packages (no root, no sudo)"
        sudo="sudo -n"
    fi
    have apt-get || die "qemu-system-arm is missing and there is no apt-get here: install qemu-system-arm by hand"
    say "installing qemu-system-arm"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update </dev/null >"$log/apt" 2>&1 \
        && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y qemu-system-arm </dev/null >>"$log/apt" 2>&1 \
        || { tail -20 "$log/apt" >&2; die "apt-get install qemu-system-arm failed"; }
    have qemu-system-arm || die "qemu-system-arm still not found after installing it"
fi

cd "$here"
say "host tests (cargo test --release)"
run cargo test --release --locked -- --nocapture 2>&1 | tee "$log/host"
say "all tests again in debug (integer overflow checks on)"
run cargo test --locked 2>&1 | tee "$log/debug"
say "library build for the RP2040 (thumbv6m-none-eabi, no_std, no default features)"
run cargo build --release --locked --lib --no-default-features --target thumbv6m-none-eabi

cd "$here/qemu"
say "target tests under qemu on a Cortex-M3 (thumbv7m-none-eabi, lm3s6965evb)"
if ! run timeout 1200 cargo run --release --locked 2>&1 | tee "$log/qemu-m3"; then
    die "the qemu Cortex-M3 run failed (see the RATE / PERF lines above)"
fi
grep -q "^qemu: all passed" "$log/qemu-m3" || die "the qemu Cortex-M3 run did not report success"
say "target tests under qemu on a Cortex-M0 (thumbv6m-none-eabi, the RP2040's instruction set, microbit)"
if ! run timeout 1200 cargo run --release --locked --target thumbv6m-none-eabi 2>&1 | tee "$log/qemu-m0"; then
    die "the qemu Cortex-M0 run failed (see the RATE / PERF lines above)"
fi
grep -q "^qemu: all passed" "$log/qemu-m0" || die "the qemu Cortex-M0 run did not report success"

echo
say "figures:"
for f in host qemu-m3 qemu-m0; do
    grep -h "^core:\|^RATE\|^PERF" "$log/$f" | sed "s/^/  $f: /"
done
say "all passed"
