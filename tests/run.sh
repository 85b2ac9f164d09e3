#!/usr/bin/env bash
# The project's full check: installs the end-to-end test peers when they are missing
# (mosquitto, mosquitto_sub, socat, chromium, and the npm packages of tests/browser),
# then format check, clippy, build of the daemon binary, and every test of the
# workspace (the e2e tests drive the built binary; tests/tests/browser.rs drives
# headless Chromium with node), the benchmark smoke runs and the power-cut test.
# Runs from any directory, reads no stdin.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# mosquitto lives in /usr/sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

banner() {
    printf '\n======================================================================\n'
    printf '==== %s\n' "$*"
    printf '======================================================================\n'
}

fail() {
    printf 'run.sh: FAILED: %s\n' "$*" >&2
    exit 1
}

banner "test peers: mosquitto, mosquitto_sub, mosquitto_passwd, socat, openssl, chromium"
missing=()
command -v mosquitto >/dev/null 2>&1 || missing+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || missing+=(mosquitto-clients)
command -v socat >/dev/null 2>&1 || missing+=(socat)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x /usr/bin/chromium ] || missing+=(chromium chromium-driver)
# A CJK font, so the Chinese pages in the browser tests' screenshots are readable.
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo -n)
    else
        fail "not root and no sudo: cannot install ${missing[*]}"
    fi
    "${as_root[@]}" apt-get update </dev/null ||
        fail "apt-get update failed"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}" </dev/null ||
        fail "apt-get install ${missing[*]} failed"
fi
for cmd in mosquitto mosquitto_sub mosquitto_passwd socat openssl; do
    command -v "$cmd" >/dev/null 2>&1 || fail "$cmd is still missing after the install step"
    echo "$cmd: $(command -v "$cmd")"
done
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium is still missing after the install step"
echo "chromium: /usr/bin/chromium"

banner "browser test packages: node >= 20, npm, tests/browser/node_modules"
command -v node >/dev/null 2>&1 || fail "node is not installed (the browser tests need node >= 20 and npm)"
command -v npm >/dev/null 2>&1 || fail "npm is not installed (the browser tests need node >= 20 and npm)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || fail "node $(node --version) is too old: the browser tests need node >= 20"
echo "node: $(node --version), npm: $(npm --version)"
if [ ! -d tests/browser/node_modules ]; then
    if [ -f tests/browser/package-lock.json ]; then
        (cd tests/browser && npm ci --no-audit --no-fund </dev/null) || fail "npm ci in tests/browser failed"
    else
        (cd tests/browser && npm install --no-audit --no-fund </dev/null) || fail "npm install in tests/browser failed"
    fi
fi
banner "FUSE for powerfs (the power-cut test and tests/tests/store_failure.rs)"
# powerfs is a FUSE file system served by the tests themselves; as root the kernel mount needs no fusermount.
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
[ -e /dev/fuse ] || fail "/dev/fuse is missing: the power-cut and disk-failure tests need FUSE (modprobe fuse)"
[ "$(id -u)" -eq 0 ] || fail "the power-cut and disk-failure tests mount powerfs (FUSE) and need root"
echo "/dev/fuse: present"

command -v cargo >/dev/null 2>&1 || fail "cargo is not installed"
cargo --version

banner "cargo fmt --all -- --check"
cargo fmt --all -- --check </dev/null || fail "formatting differs: run cargo fmt --all"

banner "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings </dev/null || fail "clippy found problems"

banner "cargo build -p linekeeper (the binary the e2e tests drive)"
cargo build -p linekeeper </dev/null || fail "the daemon does not build"

banner "cargo test --workspace"
cargo test --workspace </dev/null || fail "tests failed"

banner "bridge protocol for the board: linekeeper-bridge-proto builds for thumbv6m-none-eabi (RP2040), no_std, no alloc"
if ! rustc --print target-list >/dev/null 2>&1 ||
    ! [ -d "$(rustc --print sysroot)/lib/rustlib/thumbv6m-none-eabi" ]; then
    command -v rustup >/dev/null 2>&1 || fail "the Rust target thumbv6m-none-eabi is missing and there is no rustup to add it"
    rustup target add thumbv6m-none-eabi </dev/null || fail "rustup target add thumbv6m-none-eabi failed"
fi
cargo build -p linekeeper-bridge-proto --release --no-default-features --target thumbv6m-none-eabi </dev/null ||
    fail "the bridge protocol crate does not build for the board (thumbv6m-none-eabi)"

banner "line signal processing: firmware-bridge/dsp/check.sh (release tests, RP2040 build, detection under qemu on Cortex-M3 and M0)"
DSP_NICE=0 firmware-bridge/dsp/check.sh </dev/null || fail "firmware-bridge/dsp/check.sh failed"

banner "benchmark smoke run: lkbench --quick (figures are printed, not asserted; it fails only on lost events)"
cargo build --release -p linekeeper </dev/null || fail "the release daemon does not build"
cargo run --release -p linekeeper-e2e --bin lkbench -- --quick </dev/null || fail "lkbench --quick failed"

banner "web page benchmark smoke run: webbench --quick (fails only when a page or the live stream is wrong)"
cargo run --release -p linekeeper-e2e --bin webbench -- --quick </dev/null || fail "webbench --quick failed"

banner "power-cut test: powercut --cuts 50 (fails on any acknowledged call or task lost, seq reused, or web login lost)"
cargo run --release -p linekeeper-e2e --bin powercut -- --cuts 50 </dev/null ||
    fail "powercut --cuts 50 failed: acknowledged records were lost, a seq was reused or the login was lost after a power cut (see its figures above)"

banner "all checks passed"
