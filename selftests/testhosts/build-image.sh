#!/bin/sh
# Build the Debian bookworm guest image for the QEMU test hosts (cisaudit/testhosts).
# Needs (Debian packages): debootstrap e2fsprogs qemu-utils qemu-system-x86 openssh-client
# Run as root (debootstrap chroots). Usage: build-image.sh OUT_DIR [DEB_CACHE_DIR [CLIENT_KEY]]
# Writes OUT_DIR/{disk.qcow2,vmlinuz,initrd.img}; root's login key is CLIENT_KEY(.pub), made if
# missing (default OUT_DIR/id_ed25519) and kept across rebuilds so running VMs stay reachable.
# Everything that defines the image lives in this file: image.py hashes it to decide rebuilds.
set -eu

out=${1:?usage: build-image.sh OUT_DIR [DEB_CACHE_DIR [CLIENT_KEY]]}
debcache=${2:-}
client_key=${3:-$out/id_ed25519}
suite=bookworm
packages=systemd,systemd-sysv,openssh-server,auditd,docker.io,containerd,runc,linux-image-cloud-amd64,iproute2,procps,util-linux,kmod,initramfs-tools,zstd

mirror=$(sh "$(dirname "$0")/mirror.sh") # same mirror as this machine's apt

work=$(mktemp -d "${TMPDIR:-/tmp}/cisaudit-image.XXXXXX")
root=$work/root
cleanup() {
    # debootstrap leaves /proc and /sys mounted in the chroot when it fails.
    for m in proc sys dev/pts dev; do umount -l "$root/$m" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Run a step quietly; show its output only if it fails.
quiet() { "$@" >"$work/step.log" 2>&1 || { tail -n 40 "$work/step.log" >&2; exit 1; }; }

mkdir -p "$out"
set -- --variant=minbase --include="$packages" --components=main
[ -n "$debcache" ] && mkdir -p "$debcache" && set -- "$@" --cache-dir="$(realpath "$debcache")"
echo "debootstrap $suite from $mirror" >&2
quiet debootstrap "$@" "$suite" "$root" "$mirror"

# The scenario decides whether these run, so /run/containerd and /var/lib/docker start absent.
quiet chroot "$root" systemctl disable docker.service docker.socket containerd.service
# Nothing in the VM waits for these; they only slow a TCG boot.
quiet chroot "$root" systemctl mask systemd-networkd-wait-online.service apt-daily.timer \
    apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer getty@tty1.service
quiet chroot "$root" systemctl enable systemd-networkd.service

echo "cisaudit-vm" >"$root/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
echo "/dev/vda / ext4 rw,noatime,errors=remount-ro 0 1" >"$root/etc/fstab"
# A valid id means systemd never sees a "first boot" (which would preset-enable docker again);
# each VM gets its own id from systemd.machine_id= on the kernel command line.
od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$root/etc/machine-id"
echo >>"$root/etc/machine-id"

# QEMU user networking is fixed: 10.0.2.15/24, gateway 10.0.2.2; static beats waiting for DHCP.
cat >"$root/etc/systemd/network/10-qemu.network" <<'EOF'
[Match]
Type=ether
[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
DNS=10.0.2.3
EOF

# Root by key only. Host keys are per VM (from fw_cfg below), never baked into the image.
rm -f "$root"/etc/ssh/ssh_host_*
cat >"$root/etc/ssh/sshd_config.d/cisaudit.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF
if [ ! -s "$client_key" ] || [ ! -s "$client_key.pub" ]; then
    rm -f "$client_key" "$client_key.pub"
    ssh-keygen -q -t ed25519 -N '' -C cisaudit-testhosts -f "$client_key" </dev/null
fi
install -d -m 700 "$root/root/.ssh"
install -m 600 "$client_key.pub" "$root/root/.ssh/authorized_keys"

# Identity from the host: QEMU -fw_cfg opt/cisaudit/{hostkey,hostname}. Rerun after a VM is
# restored from a saved state (see cisaudit-ctl): reloading the driver reads the new QEMU's fw_cfg.
cat >"$root/usr/local/sbin/cisaudit-identity" <<'EOF'
#!/bin/sh
set -eu
fw=/sys/firmware/qemu_fw_cfg/by_name/opt/cisaudit
modprobe -r qemu_fw_cfg 2>/dev/null || true
modprobe qemu_fw_cfg
umask 077
key=/etc/ssh/ssh_host_ed25519_key
cat "$fw/hostkey/raw" >"$key.new"
ssh-keygen -y -f "$key.new" >"$key.pub.new"
mv "$key.new" "$key"
mv "$key.pub.new" "$key.pub"
chmod 644 "$key.pub"
name=$(cat "$fw/hostname/raw")
echo "$name" >/etc/hostname
hostname "$name"
EOF
chmod 755 "$root/usr/local/sbin/cisaudit-identity"
cat >"$root/etc/systemd/system/cisaudit-identity.service" <<'EOF'
[Unit]
Description=Host key and hostname from QEMU fw_cfg
After=local-fs.target
Before=ssh.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/cisaudit-identity
[Install]
WantedBy=multi-user.target ssh.service
EOF
quiet chroot "$root" systemctl enable cisaudit-identity.service

# Control line from the harness on ttyS1 (a QEMU socket only the harness can open). A restored
# VM hears "restored EPOCH MACHINE_ID" and takes this QEMU's identity, the clock and an id, so
# the harness never has to trust the saved template's host key over the network.
cat >"$root/usr/local/sbin/cisaudit-ctl" <<'EOF'
#!/bin/sh
tty=/dev/ttyS1
stty -F "$tty" raw -echo clocal
exec <"$tty" >"$tty"
while read -r cmd epoch id; do
    case $cmd in
    ping) echo pong ;;
    restored)
        if date -u -s "@$epoch" >/dev/null && echo "$id" >/etc/machine-id &&
            systemctl restart cisaudit-identity ssh; then echo ok; else echo failed; fi ;;
    esac
done
EOF
chmod 755 "$root/usr/local/sbin/cisaudit-ctl"
cat >"$root/etc/systemd/system/cisaudit-ctl.service" <<'EOF'
[Unit]
Description=Harness control line on ttyS1
After=cisaudit-identity.service
[Service]
ExecStart=/usr/local/sbin/cisaudit-ctl
Restart=always
[Install]
WantedBy=multi-user.target
EOF
quiet chroot "$root" systemctl enable cisaudit-ctl.service

# A small initrd boots faster under TCG: only what finds /dev/vda.
sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
printf 'virtio_pci\nvirtio_blk\next4\n' >>"$root/etc/initramfs-tools/modules"
quiet chroot "$root" update-initramfs -u -k all

cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
cp "$root"/boot/initrd.img-* "$out/initrd.img"
quiet chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/tmp/*

# No loop mounts: mkfs.ext4 fills the filesystem from the tree.
quiet mkfs.ext4 -q -F -L cisaudit-root -d "$root" "$work/disk.raw" 3G
# zstd: as small as zlib here (~215 MB) and 4x faster to write.
qemu-img convert -c -O qcow2 -o compression_type=zstd "$work/disk.raw" "$out/disk.qcow2"
