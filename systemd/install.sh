#!/usr/bin/env bash
# Set up a kiosk on a fresh Raspberry Pi OS Bookworm (Lite, 64-bit). Safe to run again: every step
# checks before it changes anything, and files are only replaced by identical content or newer
# versions from this tree. The site config /etc/kiosk/kiosk.toml is created once and never overwritten.
#
#   sudo bash systemd/install.sh                 # install on this Pi
#   bash systemd/install.sh --root /tmp/img      # write the files into a tree (image building, tests)
#
# With --root other than /, nothing outside that tree is touched: apt, useradd, chown, pip,
# udevadm and the running systemd are skipped; units are enabled with `systemctl --root`, which
# only writes symlinks below the tree. Override commands with KIOSK_SYSTEMCTL / KIOSK_APT etc.
set -euo pipefail

ROOT=/
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NO_APT=${KIOSK_INSTALL_NO_APT:-0}
NO_VENV=${KIOSK_INSTALL_NO_VENV:-0}

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="$2"; shift 2 ;;
        --root=*) ROOT="${1#--root=}"; shift ;;
        --src) SRC="$2"; shift 2 ;;
        --no-apt) NO_APT=1; shift ;;
        --no-venv) NO_VENV=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
ROOT="${ROOT%/}"
R="${ROOT}"            # prefix for paths: "" for the live system
LIVE=0
[ -z "$R" ] && LIVE=1

SYSTEMCTL=${KIOSK_SYSTEMCTL:-systemctl}
APT=${KIOSK_APT:-apt-get}
USERADD=${KIOSK_USERADD:-useradd}
USERMOD=${KIOSK_USERMOD:-usermod}
UDEVADM=${KIOSK_UDEVADM:-udevadm}
PYTHON=${KIOSK_PYTHON:-python3}

say() { echo "install.sh: $*"; }

if [ "$LIVE" = 1 ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (sudo bash $0), or use --root DIR" >&2
    exit 1
fi

# put SRC DEST MODE: install a file only when its content or mode differs.
put() {
    local src="$1" dest="$2" mode="$3"
    mkdir -p "$(dirname "$dest")"
    if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c %a "$dest")" = "${mode#0}" ]; then
        return 0
    fi
    install -m "$mode" "$src" "$dest"
    say "installed ${dest#"$R"}"
}

# --- 1. packages ------------------------------------------------------------------------------------
if [ "$LIVE" = 1 ] && [ "$NO_APT" != 1 ]; then
    # libusb for nfcpy readers; pcscd/libccid for RC-S300 and ACR1252U; pyscard from Debian because
    # PyPI has no Linux wheel for it (the venv sees it through --system-site-packages).
    DEBIAN_FRONTEND=noninteractive $APT install -y --no-install-recommends \
        python3-venv python3-dev libusb-1.0-0 pcscd libccid python3-pyscard ca-certificates
fi

# --- 2. the kiosk user --------------------------------------------------------------------------------
if [ "$LIVE" = 1 ]; then
    if ! getent passwd kiosk >/dev/null; then
        $USERADD --system --user-group --home-dir /var/lib/kiosk --no-create-home --shell /usr/sbin/nologin kiosk
        say "created user kiosk"
    fi
    # video/render: KMS; input: touch; plugdev: readers; systemd-journal: the USB export includes the log.
    for g in video render input plugdev systemd-journal; do
        if getent group "$g" >/dev/null && ! id -nG kiosk | tr ' ' '\n' | grep -qx "$g"; then
            $USERMOD -aG "$g" kiosk
            say "added kiosk to $g"
        fi
    done
else
    say "--root: skipping user creation (kiosk user in video render input plugdev systemd-journal)"
fi

# --- 3. the application -----------------------------------------------------------------------------
# A clean copy of the source tree (no .git, venv, tests or caches), replaced only when it changed.
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
tar -C "$SRC" --exclude=.git --exclude=.venv --exclude=tests --exclude=bench --exclude='__pycache__' \
    --exclude='*.egg-info' --exclude='*.pyc' --exclude=kiosk-data --exclude=.pytest_cache \
    -cf - pyproject.toml README.md kiosk server_sync systemd docs config | tar -C "$STAGE" -xf -
mkdir -p "$R/opt/kiosk"
if [ ! -d "$R/opt/kiosk/src" ] || ! diff -rq "$STAGE" "$R/opt/kiosk/src" >/dev/null 2>&1; then
    rm -rf "$R/opt/kiosk/src.new"
    cp -a "$STAGE" "$R/opt/kiosk/src.new"
    chmod 0755 "$R/opt/kiosk/src.new"
    rm -rf "$R/opt/kiosk/src"
    mv "$R/opt/kiosk/src.new" "$R/opt/kiosk/src"
    say "copied the application to /opt/kiosk/src"
    SRC_CHANGED=1
else
    SRC_CHANGED=0
fi
if [ "$LIVE" = 1 ] && [ "$NO_VENV" != 1 ]; then
    if [ ! -x /opt/kiosk/venv/bin/python ]; then
        $PYTHON -m venv --system-site-packages /opt/kiosk/venv
        SRC_CHANGED=1
    fi
    if [ "$SRC_CHANGED" = 1 ] || [ ! -x /opt/kiosk/venv/bin/kiosk ]; then
        /opt/kiosk/venv/bin/pip install --quiet --upgrade /opt/kiosk/src
        say "installed the kiosk package into /opt/kiosk/venv"
    fi
fi

# --- 4. config and data -----------------------------------------------------------------------------
mkdir -p "$R/etc/kiosk"
chmod 0750 "$R/etc/kiosk"
if [ ! -e "$R/etc/kiosk/kiosk.toml" ]; then
    # The example already uses data_dir = "/var/lib/kiosk" (StateDirectory=kiosk). Edit [kiosk] id after this.
    install -m 0640 "$SRC/config/kiosk.example.toml" "$R/etc/kiosk/kiosk.toml"
    say "created /etc/kiosk/kiosk.toml from the example: set [kiosk] id, projects and [portal] url"
fi
mkdir -p "$R/var/lib/kiosk"
chmod 0750 "$R/var/lib/kiosk"
if [ "$LIVE" = 1 ]; then
    chown root:kiosk /etc/kiosk /etc/kiosk/kiosk.toml
    chown kiosk:kiosk /var/lib/kiosk
fi

# --- 5. readers, USB sticks, power ------------------------------------------------------------------
put "$SRC/systemd/99-kiosk-readers.rules" "$R/etc/udev/rules.d/99-kiosk-readers.rules" 0644
put "$SRC/systemd/99-kiosk-usb-mount.rules" "$R/etc/udev/rules.d/99-kiosk-usb-mount.rules" 0644
put "$SRC/systemd/kiosk-readers-blacklist.conf" "$R/etc/modprobe.d/kiosk-readers-blacklist.conf" 0644
put "$SRC/systemd/50-kiosk-power.rules" "$R/etc/polkit-1/rules.d/50-kiosk-power.rules" 0644
mkdir -p "$R/media/kiosk"
if [ "$LIVE" = 1 ]; then
    $UDEVADM control --reload-rules || true
fi

# --- 6. the screen never blanks ---------------------------------------------------------------------
# Bookworm keeps the kernel command line in /boot/firmware/cmdline.txt (one line); older images in /boot.
for cmdline in "$R/boot/firmware/cmdline.txt" "$R/boot/cmdline.txt"; do
    [ -f "$cmdline" ] || continue
    [ -L "$cmdline" ] && continue
    line="$(head -n1 "$cmdline")"
    case " $line " in
        *" consoleblank=0 "*) ;;
        *" consoleblank="*)
            printf '%s\n' "$(printf '%s' "$line" | sed -E 's/(^| )consoleblank=[^ ]*/\1consoleblank=0/')" > "$cmdline"
            say "set consoleblank=0 in ${cmdline#"$R"} (reboot to apply)" ;;
        *)
            printf '%s consoleblank=0\n' "$line" > "$cmdline"
            say "added consoleblank=0 to ${cmdline#"$R"} (reboot to apply)" ;;
    esac
    break
done

# --- 7. systemd units ---------------------------------------------------------------------------------
UNITS="kiosk.service kiosk-sync.service kiosk-sync.timer kiosk-closeout.service kiosk-closeout.timer"
for u in $UNITS; do
    put "$SRC/systemd/$u" "$R/etc/systemd/system/$u" 0644
done
# The portal runs on the city's server; its unit is installed (not enabled) so one script serves both.
put "$SRC/systemd/kiosk-portal.service" "$R/etc/systemd/system/kiosk-portal.service" 0644

if [ "$LIVE" = 1 ]; then
    $SYSTEMCTL daemon-reload
    $SYSTEMCTL enable kiosk.service kiosk-sync.timer kiosk-closeout.timer
    # tty1 belongs to the kiosk picture (kiosk.service also Conflicts= with it).
    $SYSTEMCTL disable getty@tty1.service 2>/dev/null || true
    $SYSTEMCTL start kiosk-sync.timer kiosk-closeout.timer
else
    $SYSTEMCTL --root="$ROOT" --quiet enable kiosk.service kiosk-sync.timer kiosk-closeout.timer
    $SYSTEMCTL --root="$ROOT" --quiet disable getty@tty1.service 2>/dev/null || true
fi

say "done. Next: edit /etc/kiosk/kiosk.toml, run \`sudo -u kiosk /opt/kiosk/venv/bin/kiosk doctor --config /etc/kiosk/kiosk.toml\`, then reboot."
