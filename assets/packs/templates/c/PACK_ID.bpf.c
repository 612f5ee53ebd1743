// A Microscope probe pack program: openat() calls per process, and every
// failed one. Build with `make` (clang-22 and libbpf-dev).
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 target_tgid = 0;   /* a knob, set by the helper */

/* The record of syscalls:sys_exit_openat, as its tracefs format file lays it out. */
struct sys_exit_ctx { __u64 common; __s32 nr; __s32 pad; __s64 ret; };

struct failure { __u32 tgid; __s32 ret; char comm[16]; };

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024);
         __type(key, __u32); __type(value, __u64); } opens SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF);
         __uint(max_entries, 64 * 1024); } failures SEC(".maps");

SEC("tracepoint/syscalls/sys_exit_openat")
int openat_exit(struct sys_exit_ctx *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (target_tgid && tgid != target_tgid)
		return 0;
	__u64 one = 1, *n = bpf_map_lookup_elem(&opens, &tgid);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&opens, &tgid, &one, BPF_NOEXIST);
	if (ctx->ret >= 0)
		return 0;
	struct failure *f = bpf_ringbuf_reserve(&failures, sizeof(*f), 0);
	if (!f)
		return 0;
	f->tgid = tgid;
	f->ret = ctx->ret;
	bpf_get_current_comm(f->comm, sizeof(f->comm));
	bpf_ringbuf_submit(f, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
