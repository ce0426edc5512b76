# Installation steps shared by scripts/run.sh and scripts/test.sh (sourced, not run).
#
# install_debian_packages PACKAGE...   apt-get installs the named Debian packages that are
#                                      missing (one `apt-get update` first, only if needed).
# install_python_env                   creates .venv and runs `pip install -e '.[test]'` when
#                                      pyproject.toml changed since the last install.
# install_prism                        Node.js (Debian's, when npx is missing) and Prism in
#                                      npm's cache, for the contract runs against vendor specs.

# Root runs apt-get itself; anyone else goes through sudo.
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "firmsync: '$*' needs root: run as root or install sudo" >&2
        return 1
    fi
}

# Is the Debian package's main program already on this machine?
debian_package_present() {
    case "$1" in
        postgresql) compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ;;
        npm) command -v npx >/dev/null ;;
        python3-venv) command -v python3 >/dev/null && python3 -c 'import ensurepip, venv' 2>/dev/null ;;
        *) command -v "$1" >/dev/null ;;
    esac
}

install_debian_packages() {
    local missing=() package
    for package in "$@"; do
        debian_package_present "$package" || missing+=("$package")
    done
    ((${#missing[@]})) || return 0
    echo "firmsync: installing Debian packages: ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

install_python_env() {
    local stamp=.venv/.firmsync-installed wanted
    install_debian_packages python3-venv
    if [[ ! -x .venv/bin/python ]]; then
        echo "firmsync: creating the virtualenv in .venv"
        python3 -m venv .venv
    fi
    wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [[ ! -f $stamp || $(<"$stamp") != "$wanted" ]]; then
        echo "firmsync: installing Python packages (pyproject.toml changed since the last install)"
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
        echo "$wanted" >"$stamp"
    fi
}

install_prism() {
    install_debian_packages nodejs npm
    # one download before the tests, so test modules starting Prism at once never race for it
    npx --yes @stoplight/prism-cli@5 --version >/dev/null
}

# A free TCP port on the loopback interface.
free_port() {
    .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
