#!/usr/bin/env sh
# Builds kt and installs the binary, shell completions and man pages under a prefix.
#
#   ./install.sh                    # into ~/.local (no root needed)
#   ./install.sh --prefix /usr/local
#   ./install.sh --uninstall [--prefix DIR]
#
# Idempotent: running it again replaces the same files.
set -eu

prefix="${PREFIX:-$HOME/.local}"
uninstall=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "$0")" && pwd)"
bin="$prefix/bin/kt"
bash_c="$prefix/share/bash-completion/completions/kt"
zsh_c="$prefix/share/zsh/site-functions/_kt"
fish_c="$prefix/share/fish/vendor_completions.d/kt.fish"
man_dir="$prefix/share/man/man1"

if [ "$uninstall" -eq 1 ]; then
  rm -f "$bin" "$bash_c" "$zsh_c" "$fish_c"
  for page in "$root"/man/*.1; do rm -f "$man_dir/$(basename "$page")"; done
  echo "kt removed from $prefix"
  exit 0
fi

if [ -z "${KT_SKIP_BUILD:-}" ]; then
  (cd "$root" && cargo build --release --locked)
fi
install -d "$prefix/bin" "$(dirname "$bash_c")" "$(dirname "$zsh_c")" "$(dirname "$fish_c")" "$man_dir"
install -m 0755 "$root/target/release/kt" "$bin"
install -m 0644 "$root/completions/kt.bash" "$bash_c"
install -m 0644 "$root/completions/_kt" "$zsh_c"
install -m 0644 "$root/completions/kt.fish" "$fish_c"
for page in "$root"/man/*.1; do install -m 0644 "$page" "$man_dir/"; done
echo "kt installed: $bin"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "note: add $prefix/bin to your PATH" ;; esac
