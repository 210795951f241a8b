#!/bin/busybox sh
# /init of the vsockport sandbox guest (runs from the initramfs, as PID 1).
# Loads the vsock loopback transport, builds the root (host / read-only under a tmpfs overlay, shares
# read-write at their host paths), runs the command with its output relayed to virtio serial ports,
# records the exit code and powers off.
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "vsockport-sandbox: $*" > /dev/console; }
fail() { say "$*"; sync; poweroff -f; }

for module in $(cat /modules.order); do
    insmod "/modules/$module.ko" || fail "insmod $module failed"
done

NINEP=trans=virtio,version=9p2000.L,msize=512000
mkdir -p /ctl /lower /rw /newroot
mount -t 9p -o "$NINEP,cache=mmap" vsp_ctl /ctl || fail "cannot mount the control share"
mount -t 9p -o "$NINEP,cache=loose,ro" vsp_root /lower || fail "cannot mount the host root"
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || fail "overlay failed"
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/shm /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
mkdir -p /newroot/run/vsockport-sandbox
mount --bind /ctl /newroot/run/vsockport-sandbox
while read -r tag path; do
    mkdir -p "/newroot$path"
    mount -t 9p -o "$NINEP,cache=mmap" "$tag" "/newroot$path" || fail "cannot mount share $path"
done < /ctl/shares
ip link set lo up

port_device() {
    for port in /sys/class/virtio-ports/*; do
        [ "$(cat "$port/name")" = "$1" ] && echo "/dev/${port##*/}" && return
    done
}
OUT=$(port_device vsp.stdout)
ERR=$(port_device vsp.stderr)
[ -n "$OUT" ] && [ -n "$ERR" ] || fail "virtio serial ports missing"

# A virtio port takes at most 32 KiB per write(): relay through pipes with cat, which handles short writes.
mkfifo /newroot/run/vsp-out /newroot/run/vsp-err
cat /newroot/run/vsp-out > "$OUT" &
RELAY_OUT=$!
cat /newroot/run/vsp-err > "$ERR" &
RELAY_ERR=$!
chroot /newroot /bin/sh /run/vsockport-sandbox/command.sh < /dev/null > /newroot/run/vsp-out 2> /newroot/run/vsp-err
STATUS=$?

# Leftover background processes would hold the pipes open: end everything but us and the relays.
for proc in /proc/[0-9]*; do
    pid=${proc##*/}
    case "$pid" in 1|$$|$RELAY_OUT|$RELAY_ERR) continue ;; esac
    kill -9 "$pid" 2>/dev/null  # kernel threads ignore it
done
wait $RELAY_OUT $RELAY_ERR
echo "$STATUS" > /ctl/status
sync
poweroff -f
