/* tests/escape/probe.c: escape probes, run inside a container.
 *
 * `probe NAME...` runs each named probe and prints one line per probe:
 * `NAME refused ERRNO`, or `NAME allowed [DETAIL]` when the kernel let the
 * call through (its permission checks passed, even if a bogus argument then
 * failed it). Every probe is harmless when allowed: it sets the clock to
 * the time it reads, loads no module, unloads nothing, writes no sysrq
 * command, and undoes a remount it managed. Built static by the tests
 * (`cc -static`), so any rootfs can run it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>

static const char *name;

static int refused(int e) {
    printf("%s refused %s\n", name, strerrorname_np(e) ? strerrorname_np(e) : "?");
    return 0;
}

static int allowed(const char *detail) {
    printf("%s allowed %s\n", name, detail ? detail : "");
    return 0;
}

/* A call with a bogus argument: refused only by a permission check. */
static int by_errno(long rc) {
    if (rc >= 0)
        return allowed("");
    if (errno == EPERM || errno == EACCES || errno == ENOSYS)
        return refused(errno);
    char detail[64];
    snprintf(detail, sizeof detail, "(then %s)", strerrorname_np(errno));
    return allowed(detail);
}

/* A block device of the host: the first of /sys/dev/block (8:0 if none). */
static dev_t host_disk(void) {
    unsigned int major = 8, minor = 0;
    DIR *d = opendir("/sys/dev/block");
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (sscanf(e->d_name, "%u:%u", &major, &minor) == 2)
            break;
    if (d)
        closedir(d);
    return makedev(major, minor);
}

static int mknod_block(void) {
    /* /dev: a tmpfs without nodev, where a node would work. */
    const char *path = "/dev/.probe-disk";
    unlink(path);
    if (mknod(path, S_IFBLK | 0600, host_disk()) != 0)
        return refused(errno);
    int fd = open(path, O_RDONLY);
    int e = errno;
    unlink(path);
    if (fd < 0) {
        char detail[64];
        snprintf(detail, sizeof detail, "made the node (open: %s)", strerrorname_np(e));
        return allowed(detail);
    }
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return allowed(n < 0 ? "made and opened the node" : "read the disk");
}

static int mount_new(const char *type) {
    char dir[] = "/tmp/.probe-mnt-XXXXXX";
    if (!mkdtemp(dir))
        return refused(errno);
    int rc = mount(type, dir, type, 0, NULL);
    int e = errno;
    if (rc == 0)
        umount2(dir, MNT_DETACH);
    rmdir(dir);
    return rc == 0 ? allowed("read-write") : refused(e);
}

/* The mount's per-mount flags a remount must repeat (locked in a userns). */
static unsigned long kept_flags(const char *path) {
    struct statvfs s;
    unsigned long f = 0;
    if (statvfs(path, &s) == 0) {
        if (s.f_flag & ST_NOSUID) f |= MS_NOSUID;
        if (s.f_flag & ST_NODEV) f |= MS_NODEV;
        if (s.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    }
    return f;
}

static int remount_rw(const char *path) {
    unsigned long keep = kept_flags(path);
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | keep, NULL) == 0) {
        mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL);
        return allowed("the mount");
    }
    int e = errno;
    if (mount(NULL, path, NULL, MS_REMOUNT | keep, NULL) == 0) {
        mount(NULL, path, NULL, MS_REMOUNT | MS_RDONLY | keep, NULL);
        return allowed("the file system");
    }
    return refused(e);
}

static int unmount(const char *path) {
    if (umount2(path, MNT_DETACH) == 0)
        return allowed("unmasked");
    return refused(errno);
}

static int clock_set(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return by_errno(clock_settime(CLOCK_REALTIME, &now));
}

/* The "shocker": an ext4 handle of inode 2, the file system's root. */
static int shocker(void) {
    struct {
        struct file_handle h;
        unsigned char bytes[8];
    } h = {0};
    h.h.handle_bytes = 8;
    h.h.handle_type = 1; /* FILEID_INO32_GEN */
    unsigned int ino = 2;
    memcpy(h.h.f_handle, &ino, sizeof ino);
    int mount_fd = open("/etc", O_RDONLY | O_DIRECTORY);
    long fd = syscall(SYS_open_by_handle_at, mount_fd, &h.h, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        close(fd);
        return allowed("opened the file system's root");
    }
    return by_errno(fd);
}

static int bpf_map(void) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
    if (fd >= 0)
        close(fd);
    return by_errno(fd);
}

static int sysrq(void) {
    int fd = open("/proc/sysrq-trigger", O_WRONLY);
    if (fd < 0)
        return refused(errno);
    close(fd);
    return allowed("open for writing (nothing written)");
}

static int write_map(pid_t pid, const char *file, const char *text) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    int rc = write(fd, text, strlen(text)) < 0 ? -1 : 0;
    close(fd);
    return rc;
}

/* unshare -U -m, root there, then try to undo the container's mounts. */
static int userns_mount(void) {
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return refused(errno);
    uid_t uid = getuid();
    gid_t gid = getgid();
    pid_t child = fork();
    if (child == 0) {
        close(pipefd[0]);
        char out[128] = "";
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
            snprintf(out, sizeof out, "E%s", strerrorname_np(errno));
        } else {
            char map[32];
            pid_t self = getpid();
            write_map(self, "setgroups", "deny");
            snprintf(map, sizeof map, "0 %u 1", uid);
            write_map(self, "uid_map", map);
            snprintf(map, sizeof map, "0 %u 1", gid);
            write_map(self, "gid_map", map);
            char dir[] = "/tmp/.probe-ns-XXXXXX";
            int ok = 0;
            if (mkdtemp(dir)) {
                if (mount("proc", dir, "proc", 0, NULL) == 0) {
                    strcat(out, "mount-proc ");
                    ok = 1;
                }
                rmdir(dir);
            }
            if (umount2("/proc/kcore", MNT_DETACH) == 0) {
                strcat(out, "umount-kcore ");
                ok = 1;
            }
            if (mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND | kept_flags("/proc/sys"), NULL) == 0) {
                strcat(out, "remount-proc-sys-rw ");
                ok = 1;
            }
            if (!ok)
                snprintf(out, sizeof out, "E%s", strerrorname_np(errno));
        }
        write(pipefd[1], out, strlen(out));
        _exit(0);
    }
    close(pipefd[1]);
    char out[128] = "";
    ssize_t n = read(pipefd[0], out, sizeof out - 1);
    close(pipefd[0]);
    waitpid(child, NULL, 0);
    if (n <= 0)
        return refused(EIO);
    out[n] = 0;
    if (out[0] == 'E') {
        printf("%s refused %s\n", name, out + 1);
        return 0;
    }
    return allowed(out);
}

static int ptrace_pid(const char *arg) {
    pid_t pid = arg ? atoi(arg) : 0;
    if (pid <= 0)
        return refused(EINVAL);
    if (ptrace(PTRACE_ATTACH, pid, 0, 0) == 0) {
        ptrace(PTRACE_DETACH, pid, 0, 0);
        return allowed("attached");
    }
    return refused(errno);
}

static int write_exe(const char *path) {
    int fd = open(path, O_WRONLY);
    if (fd >= 0) {
        close(fd);
        return allowed("open for writing (nothing written)");
    }
    return refused(errno);
}

/* getpid through the x32 and i386 entry points. */
static int x32(void) {
    return by_errno(syscall(0x40000000 | SYS_getpid));
}

static int i386(void) {
    long rc;
    __asm__ volatile("int $0x80" : "=a"(rc) : "a"(20L) : "memory");
    if (rc >= 0)
        return allowed("");
    errno = (int)-rc;
    return by_errno(-1);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        char *arg = strchr(argv[i], '=');
        if (arg)
            *arg++ = 0;
        name = argv[i];
        errno = 0;
        if (!strcmp(name, "mknod-block")) mknod_block();
        else if (!strcmp(name, "mount-proc")) mount_new("proc");
        else if (!strcmp(name, "mount-sysfs")) mount_new("sysfs");
        else if (!strcmp(name, "remount-sys-rw")) remount_rw("/sys");
        else if (!strcmp(name, "remount-proc-sys-rw")) remount_rw("/proc/sys");
        else if (!strcmp(name, "umount-kcore")) unmount("/proc/kcore");
        else if (!strcmp(name, "umount-sysrq")) unmount("/proc/sysrq-trigger");
        else if (!strcmp(name, "umount-proc-keys")) unmount("/proc/keys");
        else if (!strcmp(name, "umount-proc-sys")) unmount("/proc/sys");
        else if (!strcmp(name, "init-module")) by_errno(syscall(SYS_init_module, NULL, 0UL, ""));
        else if (!strcmp(name, "finit-module")) by_errno(syscall(SYS_finit_module, -1, "", 0));
        else if (!strcmp(name, "clock-settime")) clock_set();
        else if (!strcmp(name, "open-by-handle")) shocker();
        else if (!strcmp(name, "keyctl")) by_errno(syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0));
        else if (!strcmp(name, "bpf")) bpf_map();
        else if (!strcmp(name, "kexec-load")) by_errno(syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0xffff0000UL));
        else if (!strcmp(name, "swapon")) by_errno(swapon("/dev/zero", 0));
        else if (!strcmp(name, "sysrq-trigger")) sysrq();
        else if (!strcmp(name, "userns-mount")) userns_mount();
        else if (!strcmp(name, "ptrace-outside")) ptrace_pid(arg);
        else if (!strcmp(name, "write-pid1-exe")) write_exe("/proc/1/exe");
        else if (!strcmp(name, "x32-syscall")) x32();
        else if (!strcmp(name, "i386-syscall")) i386();
        else if (!strcmp(name, "euid")) printf("euid allowed %d\n", (int)geteuid());
        else printf("%s unknown\n", name);
    }
    return 0;
}
