#!/usr/bin/env bash
# The Raspberry Pi user's flow inside an emulated Raspberry Pi OS userland: Debian 12 armhf
# (32-bit, as on a Pi 3) and arm64 (Pi 4/5), built with debootstrap and run on this machine by
# qemu-user-static through binfmt_misc.
#
#   sudo scripts/pi-userland.sh [armhf|arm64|all]        (default: all)
#
# Inside each root: pip install edgecnn from this checkout (numpy and Pillow from Debian, as
# 32-bit ARM has no wheels of them), import the shared uint8 MobileNet v1 0.25/128, compile it
# with `--target host` by the root's own gcc, classify a shared photo with the compiled model
# and check it against the numpy reference (the integer outputs bit for bit), and bench it.
# Bench figures there are EMULATOR figures (qemu translating ARM code on an x86 CPU), not a
# Raspberry Pi's speed.
#
# Environment:
#   EDGECNN_PI_ROOTS   where the built roots are kept between runs
#                      (default ${XDG_CACHE_HOME:-$HOME/.cache}/edgecnn-pi)
#   EDGECNN_DATA       the shared data (default ../shared/data beside the checkout)
#   EDGECNN_PI_MIRROR  the Debian mirror (default: read from this machine's apt sources)
# Needs root (debootstrap, chroot, mounts), debootstrap and qemu-user-static.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
roots=${EDGECNN_PI_ROOTS:-${XDG_CACHE_HOME:-$HOME/.cache}/edgecnn-pi}
data=${EDGECNN_DATA:-$here/../shared/data}
suite=bookworm
# the packages the flow needs; python3-numpy/python3-pil because armhf has no wheels of them
packages=python3,python3-venv,python3-pip,gcc,libc6-dev,python3-numpy,python3-pil,ca-certificates
model_file=tflite/mobilenet_v1_0.25_128_quant.tflite
photo=darknet/dog.jpg
host_ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
t0=$SECONDS
declare -a summary=()

say() { echo "pi-userland: [$((SECONDS - t0)) s] $*"; }
die() { echo "pi-userland: error: $*" >&2; exit 1; }

# Run "$@" as stage NAME of ARCH, and record its duration.
stage() {
  local arch=$1 name=$2 start=$SECONDS
  shift 2
  say "$arch: $name"
  "$@"
  summary+=("$arch  $name  $((SECONDS - start)) s")
}

check_host() {
  [ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot and mounts need it)"
  command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
  [ -d "$data" ] || die "the shared data is not at $data: set EDGECNN_DATA"
  for f in "$model_file" "$photo"; do
    [ -f "$data/$f" ] || die "$data/$f is missing (the shared data)"
  done
}

# binfmt_misc mounted, and qemu's handlers for 32- and 64-bit ARM registered (the F flag makes
# the kernel open the static emulator now, so that it works inside the chroot).
setup_binfmt() {
  local d=/proc/sys/fs/binfmt_misc
  [ -e "$d/register" ] || mount -t binfmt_misc binfmt_misc "$d"
  for q in arm aarch64; do
    [ -e "$d/qemu-$q" ] && continue
    local conf=/usr/lib/binfmt.d/qemu-$q.conf
    [ -f "$conf" ] || die "$conf is missing: apt-get install qemu-user-static"
    cat "$conf" > "$d/register"
  done
}

# The first Debian archive URI of this machine's apt sources (deb822 or one-line format) whose
# suites include $suite.
apt_mirror() {
  if [ -n "${EDGECNN_PI_MIRROR:-}" ]; then echo "$EDGECNN_PI_MIRROR"; return; fi
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v s="$suite" '
      /^[ \t]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
      /^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) uri = $i }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
      END { if (uri != "" && ok) print uri }' | head -n1)
  if [ -z "$m" ]; then
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk -v s="$suite" '
        $1 == "deb" { u = ($2 ~ /^\[/) ? $3 : $2; x = ($2 ~ /^\[/) ? $4 : $3
                      if (x == s && u ~ /\/debian\/?$/) { print u; exit } }')
  fi
  [ -n "$m" ] || die "no Debian $suite mirror in /etc/apt/sources*: set EDGECNN_PI_MIRROR"
  echo "$m"
}

# The root for ARCH, built once (a stamp names the suite and packages it was built with).
build_root() {
  local arch=$1 root=$roots/$1 stamp="$suite $packages"
  if [ -f "$root/.edgecnn-pi-stamp" ] && [ "$(cat "$root/.edgecnn-pi-stamp")" = "$stamp" ]; then
    say "$arch: reusing the root in $root"
    return
  fi
  local mirror
  mirror=$(apt_mirror)
  say "$arch: debootstrap $suite (minbase + $packages) from $mirror"
  rm -rf "$root" "$root.partial"
  mkdir -p "$roots"
  debootstrap --variant=minbase --arch="$arch" --include="$packages" "$suite" \
    "$root.partial" "$mirror" > "$roots/$arch-debootstrap.log" 2>&1 \
    || { tail -n 20 "$roots/$arch-debootstrap.log" >&2; die "debootstrap $arch failed"; }
  rm -rf "$root.partial/var/cache/apt/archives/"*.deb
  echo "$stamp" > "$root.partial/.edgecnn-pi-stamp"
  mv "$root.partial" "$root"
}

# /proc, the shared data (read-only) and a fresh copy of the checkout's tracked files.
mount_root() {
  local root=$1
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  mkdir -p "$root/mnt/data"
  if ! mountpoint -q "$root/mnt/data"; then
    mount --bind "$data" "$root/mnt/data"
    mount -o remount,bind,ro "$root/mnt/data"
  fi
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # the CAs this machine trusts (a network whose TLS proxy has its own CA reaches the package
  # registry only with them)
  [ -f "$host_ca" ] && cp "$host_ca" "$root/etc/ssl/certs/edgecnn-host-ca.crt"
  rm -rf "$root/opt/edgecnn-src" && mkdir -p "$root/opt/edgecnn-src"
  (cd "$here" && git ls-files -z | xargs -0 tar -cf - 2>/dev/null) \
    | tar -xf - -C "$root/opt/edgecnn-src"
}

unmount_root() {
  local root=$1
  for m in "$root/mnt/data" "$root/proc"; do
    mountpoint -q "$m" && umount "$m"
  done
  return 0
}

# Run a shell command inside ROOT with a clean environment (nothing of this machine's pip or
# edgecnn configuration leaks in).
in_root() {
  local root=$1
  shift
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/edgecnn-host-ca.crt SSL_CERT_FILE=/etc/ssl/certs/edgecnn-host-ca.crt \
    /bin/bash -euo pipefail -c "$*"
}

flow() {
  local arch=$1 root=$roots/$1
  stage "$arch" "build the root" build_root "$arch"
  mount_root "$root"
  trap 'unmount_root "'"$root"'"' EXIT
  in_root "$root" 'echo "inside: $(uname -m), $(python3 --version), $(gcc --version | head -n1)"'
  stage "$arch" "pip install edgecnn" in_root "$root" '
    [ -x /opt/venv/bin/python ] || python3 -m venv --system-site-packages /opt/venv
    pip install -q "/opt/edgecnn-src[tflite]"
    python -c "import numpy, PIL, safetensors; print(\"numpy\", numpy.__version__,
      \"Pillow\", PIL.__version__, \"safetensors\", safetensors.__version__)"'
  stage "$arch" "import the model" in_root "$root" "
    rm -rf /tmp/pi && mkdir -p /tmp/pi && cd /tmp/pi
    edgecnn import /mnt/data/$model_file -o model.safetensors"
  stage "$arch" "compile --target host" in_root "$root" '
    cd /tmp/pi && EDGECNN_CACHE=/tmp/pi/cache edgecnn compile model.safetensors --target host \
      -o build && ls build'
  stage "$arch" "classify (compiled vs reference)" in_root "$root" "
    cd /tmp/pi && export EDGECNN_CACHE=/tmp/pi/cache
    edgecnn classify model.safetensors /mnt/data/$photo --backend compiled
    python - /mnt/data/$photo <<'EOF'
import sys
import numpy as np
from edgecnn.compiler.api import compile
from edgecnn.core.preprocess import load_image, preprocess
from edgecnn.core.reference import predict
from edgecnn.formats.modelfile import load
g = load('model.safetensors')
h, w = g.input_shape[:2]
x = preprocess(load_image(sys.argv[1]), g.preprocessing, (h, w))[None]
ref, got = predict(g, x), compile(g, 'host').predict(x)
if g.layers[1].kind == 'quantize':  # an integer graph: the same integers, so equal outputs
    assert np.array_equal(got, ref), np.abs(got - ref).max()
    print('compiled outputs = reference outputs, bit for bit (integer graph)')
else:  # float32 C vs the float64-accumulating numpy reference
    assert np.allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max()), np.abs(got - ref).max()
    print('compiled outputs = reference outputs within 1e-4 (float graph)')
EOF"
  stage "$arch" "bench (emulator figures)" in_root "$root" '
    cd /tmp/pi && export EDGECNN_CACHE=/tmp/pi/cache
    echo "EMULATOR FIGURES: qemu-user on an x86 CPU, not a Raspberry Pi'"'"'s speed"
    edgecnn bench model.safetensors --against none --repeats 5 --warmup 1 --min-time 0.1 \
      -o bench.json'
  unmount_root "$root"
  trap - EXIT
}

main() {
  local which=${1:-all} arches
  case "$which" in
    all) arches="armhf arm64" ;;
    armhf | arm64) arches=$which ;;
    *) die "unknown root '$which': use armhf, arm64 or all" ;;
  esac
  check_host
  setup_binfmt
  for a in $arches; do flow "$a"; done
  say "done; stage times:"
  printf '  %s\n' "${summary[@]}"
}

main "$@"
