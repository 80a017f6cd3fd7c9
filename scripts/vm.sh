#!/usr/bin/env bash
# Boot the cached test kernel with virtme-ng under TCG and run a command.
#
#   vm.sh [options] -- COMMAND [ARG...]   run COMMAND in the guest, in the
#                                         project directory; exit with its status
#   vm.sh [options] --shell               interactive shell
#
# Options (or environment):
#   --cpus N         (RLOOP_VM_CPUS, default 2)
#   --memory SIZE    (RLOOP_VM_MEMORY, default 4G)
#   --dmesg FILE     where the guest's full dmesg is saved on the host
#                    (default: results/dmesg-vm.txt)
#   --timeout SECS   kill the VM after SECS (RLOOP_VM_TIMEOUT, default 5400)
#   --variant NAME   kernel variant (default: test)
#   --distro DIR RELEASE
#                    boot a distribution's kernel instead, unpacked in DIR
#                    by scripts/distro.sh --image: DIR/usr/lib/modules/
#                    RELEASE/vmlinuz, with its modules beside it (virtme-ng
#                    loads 9p and virtio from its initramfs and links the
#                    module directory at /lib/modules/RELEASE in the guest)
#   --exclusive      the VM needs the machine alone (a benchmark): wait for
#                    the other VMs to end, and keep new ones waiting
#   --append ARGS    more kernel command line (RLOOP_VM_APPEND); repeatable
#   --drive FILE     attach FILE as a raw virtio-blk disk with cache=none
#                    (host O_DIRECT); repeatable. The Nth one (from 0) has
#                    the serial rloop-vdN: in the guest, the vd* disk whose
#                    /sys/block/vdX/serial says so.
#
# Variables named RLOOP_TEST_* are exported to the guest command.
#
# The guest root is the host's, read-only with tmpfs overlays (virtme-ng
# over 9p). The project directory is the guest's working directory; the
# results directory is writable. KVM here is PVM-based and hangs a normal
# guest, so QEMU always runs under TCG.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=vm

cpus=${RLOOP_VM_CPUS:-2}
memory=${RLOOP_VM_MEMORY:-4G}
timeout_s=${RLOOP_VM_TIMEOUT:-5400}
variant='test'
distro_dir=
distro_release=
exclusive=
results=$RLOOP_ROOT/results
dmesg_file=$results/dmesg-vm.txt
shell=
drives=()
append=${RLOOP_VM_APPEND:-}
while [ $# -gt 0 ]; do
	case $1 in
	--cpus) cpus=$2; shift 2 ;;
	--memory) memory=$2; shift 2 ;;
	--dmesg) dmesg_file=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--variant) variant=$2; shift 2 ;;
	--distro) distro_dir=$2; distro_release=$3; shift 3 ;;
	--exclusive) exclusive=1; shift ;;
	--append) append+=" $2"; shift 2 ;;
	--drive) [ -f "$2" ] || die "no drive image $2"; drives+=("$(realpath "$2")"); shift 2 ;;
	--shell) shell=1; shift ;;
	--) shift; break ;;
	*) die "unknown option $1" "see the usage at the top of $0" ;;
	esac
done
[ -n "$shell" ] || [ $# -gt 0 ] || die "no command given" "vm.sh -- COMMAND, or vm.sh --shell"

"$RLOOP_ROOT/scripts/deps.sh"
if [ -n "$distro_dir" ]; then
	kdir=$distro_dir/usr/lib/modules/$distro_release/vmlinuz
	{ [ -f "$kdir" ] && [ -f "${kdir%/vmlinuz}/modules.dep" ]; } ||
		die "no kernel or module index in $distro_dir for $distro_release" "scripts/distro.sh --image debian:$distro_release unpacks them"
else
	kdir=$("$RLOOP_ROOT/scripts/kernel-build.sh" "$variant")
fi

# A benchmark VM runs alone, so that nothing else competes for the host's
# CPUs while it measures; test VMs may share the machine with each other.
# vm.lock is shared by test VMs and exclusive for a benchmark. flock(2) has
# no queue: while test VMs overlap, a benchmark waiting for the exclusive
# lock would never get it. So a benchmark first takes vm.gate exclusively,
# and a test VM passes through the gate (shared, released once it has
# vm.lock): new test VMs wait while a benchmark waits or runs.
mkdir -p "$RLOOP_CACHE"
exec 8>"$RLOOP_CACHE/vm.gate" 9>"$RLOOP_CACHE/vm.lock"
lock_mode=-s
[ -z "$exclusive" ] || lock_mode=-x
# RLOOP_VM_LOCK=0: do not wait (the measurements of a benchmark running
# meanwhile are then disturbed).
if [ "${RLOOP_VM_LOCK:-1}" != 0 ]; then
	if ! flock -n $lock_mode 8; then
		progress "waiting for a VM that needs the machine alone (a benchmark)"
		flock $lock_mode 8
	fi
	if ! flock -n $lock_mode 9; then
		if [ "$lock_mode" = -x ]; then
			progress "waiting for the running test VMs to end (new ones wait for this one)"
		else
			progress "waiting for a VM that needs the machine alone (a benchmark)"
		fi
		flock $lock_mode 9
	fi
fi
# A test VM lets the gate go at once; a benchmark holds it to the end.
[ "$lock_mode" = -x ] || exec 8>&-

mkdir -p "$results" "$(dirname "$dmesg_file")"
# A private, writable exchange directory for this run.
xchg=$(mktemp -d "$results/.vm.XXXXXX")
trap 'rm -rf "$xchg"' EXIT

# vng runs virtme-run from its own venv.
export PATH="$VENV/bin:$PATH"
[ -z "$distro_dir" ] || PATH="$RLOOP_ROOT/scripts/virtme:$PATH"
# The root (the host's, read-only) is mounted with cache=loose instead of
# virtme-ng's default, no cache: then the guest keeps the programs it runs
# in its page cache instead of reading them over 9p at every exec, which
# under TCG made each exec cost about a second. The host must not change
# the root while the VM runs (results/ is a mount of its own, uncached).
# The later rootflags= on the command line is the one the kernel takes.
rootflags=version=9p2000.L,trans=virtio,access=any,msize=524288,cache=loose
vng=(
	"$VENV/bin/vng" --run "$kdir" --disable-kvm --force-9p
	--cpus "$cpus" --memory "$memory"
	--rwdir "$results" --cwd "$RLOOP_ROOT"
	--append "rootflags=$rootflags log_buf_len=16M${append:+ $append}"
)
# vng pastes --qemu-opts into a shell command line: quote the value, and
# bind it with = so that argparse does not take -drive for an option.
for i in "${!drives[@]}"; do
	vng+=("--qemu-opts=-drive $(printf %q "file=${drives[$i]},format=raw,if=none,id=rloopvd$i,cache=none")"
		"--qemu-opts=-device virtio-blk-pci,drive=rloopvd$i,serial=rloop-vd$i")
done

kname=$(basename "$kdir")
[ -z "$distro_dir" ] || kname="Linux $distro_release (the distribution's)"
if [ -n "$shell" ]; then
	progress "booting $kname ($cpus CPUs, $memory, TCG); exit the shell to stop"
	exec "${vng[@]}"
fi

# The guest runs the command, then saves its dmesg whatever the outcome.
# Test knobs (RLOOP_TEST_*, such as a seed) pass through to the guest.
printf -v cmd '%q ' "$@"
knobs=
while IFS='=' read -r name _; do
	knobs+=" $name=$(printf %q "${!name}")"
done < <(env | grep -E '^RLOOP_TEST_[A-Z0-9_]+=' || true)
# The guest's PATH is Debian's own, whatever the caller's: a python3 found
# first on a developer's PATH (a pyenv shim is a bash script that runs
# several more) cost about 10 s per call under TCG instead of 1.
guest="export PATH=/usr/sbin:/usr/bin:/sbin:/bin RLOOP_IN_VM=1 RLOOP_RESULTS=$(printf %q "$results")$knobs; \
cd $(printf %q "$RLOOP_ROOT") && $cmd; rc=\$?; \
dmesg > $(printf %q "$xchg")/dmesg.txt; echo \$rc > $(printf %q "$xchg")/rc; exit \$rc"

progress "booting $kname ($cpus CPUs, $memory, TCG) to run: $*"
start=$SECONDS
# QEMU reopens its stdout and stderr by path (/proc/self/fd/N) with O_TRUNC:
# a pipe keeps it from truncating a log file they may be redirected to.
set +e
timeout --kill-after=30 "$timeout_s" "${vng[@]}" --exec "$guest" </dev/null 2>&1 | cat
rc=${PIPESTATUS[0]}
set -e
progress "VM exited with status $rc after $((SECONDS - start))s"

if [ -s "$xchg/dmesg.txt" ]; then
	cp "$xchg/dmesg.txt" "$dmesg_file"
	progress "guest dmesg saved to $dmesg_file"
else
	progress "no dmesg from the guest (it crashed or timed out)"
fi
# The command's own status when the guest reported it.
if [ -s "$xchg/rc" ]; then
	rc=$(cat "$xchg/rc")
elif [ "$rc" -eq 0 ]; then
	rc=1
fi
exit "$rc"
