# Shared by scripts/demo and scripts/test: a virtual environment kept in step with
# pyproject.toml, and the tiktoken cache beside the project when there is one.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

# The Python client (clients/python) is installed beside tokentill, editable, so its
# tests (tests/client) run against the code in the tree; a change to either
# pyproject.toml installs again.
ensure_venv() {  # ensure_venv EXTRAS  e.g. "" or "[dev]"
    local extras="$1"
    local stamp=".venv/.installed$extras"
    local want
    want="$(cat pyproject.toml clients/python/pyproject.toml | sha256sum | cut -c1-16)"
    if [ ! -x .venv/bin/python ]; then
        "$PYTHON" -m venv .venv
    fi
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "Installing tokentill$extras into .venv ..."
        .venv/bin/pip install --quiet --disable-pip-version-check -e ".$extras" \
            -e ./clients/python 2>&1 \
            | grep -v "is ignored: it is neither" || true
        .venv/bin/python -c "import django, tokentill_client" \
            || { echo "install failed" >&2; exit 1; }
        echo "$want" > "$stamp"
    fi
}

# Debian's chromium, which the browser tests (tests/browser) drive through Playwright.
# Playwright's own browser download is never used: `pip install playwright` brings only
# the driver, and the tests point it at /usr/bin/chromium.
ensure_chromium() {
    apt_ensure /usr/bin/chromium chromium
}

# Debian packages installed when missing: apt_ensure CHECK-PATH PACKAGE... (quiet when the
# path exists; one refresh of the package list if the first try fails).
apt_ensure() {
    local check="$1"
    shift
    [ -e "$check" ] && return 0
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo -n"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "No $check and no apt-get to install $*." >&2
        return 0
    fi
    echo "Installing Debian's $* ..."
    local install="$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q"
    install="$install -o DPkg::Lock::Timeout=300 $*"
    if ! $install >/dev/null 2>&1; then
        $sudo apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null 2>&1 || true
        $install >/dev/null || echo "$* could not be installed." >&2
    fi
}

# The fonts the invoice and credit-note PDFs embed (billing/invoicing/pdf/fonts.py):
# DejaVu Sans for Latin, Greek and Cyrillic, Droid Sans Fallback for Chinese and Japanese.
ensure_pdf_fonts() {
    apt_ensure /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf fonts-dejavu-core
    apt_ensure /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf fonts-droid-fallback
}

if [ -z "${TIKTOKEN_CACHE_DIR:-}" ] && [ -d "$ROOT/../shared/tiktoken" ]; then
    TIKTOKEN_CACHE_DIR="$(cd "$ROOT/../shared/tiktoken" && pwd)"
    export TIKTOKEN_CACHE_DIR
fi
