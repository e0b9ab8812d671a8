#!/usr/bin/env sh
# Builds kt and installs the binary, shell completions (bash, zsh, fish) and man pages
# under a prefix.
#
#   ./install.sh                        # into ~/.local (no root needed)
#   ./install.sh --prefix /usr/local    # or PREFIX=/usr/local ./install.sh
#   ./install.sh --uninstall [--prefix DIR]
#
# Idempotent: running it again installs the same files (stale man pages of an older kt are
# replaced); uninstalling twice is fine. KT_BIN=/path/to/kt installs that binary instead of
# building one.
set -eu

die() { echo "install.sh: $*" >&2; exit 2; }

prefix="${PREFIX:-$HOME/.local}"
uninstall=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (try --help)" ;;
  esac
done
[ -n "$prefix" ] || die "the prefix is empty"

root="$(cd "$(dirname "$0")" && pwd)"
bin="$prefix/bin/kt"
bash_c="$prefix/share/bash-completion/completions/kt"
zsh_c="$prefix/share/zsh/site-functions/_kt"
fish_c="$prefix/share/fish/vendor_completions.d/kt.fish"
man_dir="$prefix/share/man/man1"

remove_man_pages() {
  rm -f "$man_dir/kt.1"
  for page in "$man_dir"/kt-*.1; do
    [ -e "$page" ] && rm -f "$page"
  done
  return 0
}

if [ "$uninstall" -eq 1 ]; then
  rm -f "$bin" "$bash_c" "$zsh_c" "$fish_c"
  remove_man_pages
  echo "kt removed from $prefix"
  exit 0
fi

if [ -n "${KT_BIN:-}" ]; then
  built="$KT_BIN"
else
  # The `dist` profile: the release build with whole-program LTO (Cargo.toml).
  (cd "$root" && cargo build --profile dist --locked)
  built="$root/target/dist/kt"
fi
[ -x "$built" ] || die "no kt binary at $built"

install -d "$prefix/bin" "$(dirname "$bash_c")" "$(dirname "$zsh_c")" "$(dirname "$fish_c")" "$man_dir"
install -m 0755 "$built" "$bin"
install -m 0644 "$root/completions/kt.bash" "$bash_c"
install -m 0644 "$root/completions/_kt" "$zsh_c"
install -m 0644 "$root/completions/kt.fish" "$fish_c"
remove_man_pages
for page in "$root"/man/*.1; do install -m 0644 "$page" "$man_dir/"; done
echo "kt installed: $bin ($("$bin" --version))"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "note: add $prefix/bin to your PATH" ;; esac
