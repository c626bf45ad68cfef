# Sourced by the set-up scripts: where builds are cached outside the clone, so a second fresh clone on the
# same machine reuses them. SIZEUP_CACHE overrides; default ~/.cache/sizeup (XDG_CACHE_HOME respected).
SIZEUP_CACHE="${SIZEUP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sizeup}"
mkdir -p "$SIZEUP_CACHE"
export SIZEUP_CACHE
