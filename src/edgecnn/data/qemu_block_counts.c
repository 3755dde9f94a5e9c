/* A QEMU TCG plugin (user mode): how often each translated block of the guest program executes.
 *
 *   qemu-aarch64 -plugin ./libblockcounts.so,out=blocks.txt ./predict ...
 *
 * At exit it writes one line per block that ran: "<vaddr hex> <executions> <instructions>
 * <bytes>". A block is counted by an inline add that QEMU emits into the translated code, so
 * counting costs little. `edgecnn estimate` prices each block's instructions with llvm-mca.
 *
 * The few declarations of QEMU's plugin API this needs are written here (Debian ships no
 * qemu-plugin.h); they follow the API as documented for QEMU 7.2 (plugin API version 1:
 * docs/devel/tcg-plugins.rst and include/qemu/qemu-plugin.h of QEMU's sources). The functions
 * are resolved from the qemu binary when it loads this library.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* opaque here: nothing of it is read */
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
                                    void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

struct block {
    uint64_t vaddr, count;
    uint32_t insns, bytes;
};

static struct block **blocks; /* each block allocated once: QEMU keeps a pointer to .count */
static size_t n_blocks, cap_blocks;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char out_path[4096] = "blocks.txt";

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    struct block *b = calloc(1, sizeof *b);
    size_t i, n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    if (!b) return;
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    b->insns = (uint32_t)n;
    for (i = 0; i < n; i++)
        b->bytes += (uint32_t)qemu_plugin_insn_size(qemu_plugin_tb_get_insn(tb, i));
    pthread_mutex_lock(&lock);
    if (n_blocks == cap_blocks) {
        size_t cap = cap_blocks ? 2 * cap_blocks : 4096;
        struct block **grown = realloc(blocks, cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&lock);
            free(b);
            return;
        }
        blocks = grown;
        cap_blocks = cap;
    }
    blocks[n_blocks++] = b;
    pthread_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->count, 1);
}

static void write_counts(qemu_plugin_id_t id, void *userdata) {
    FILE *f = fopen(out_path, "w");
    size_t i;
    (void)id;
    (void)userdata;
    if (!f) {
        fprintf(stderr, "blockcounts: cannot write %s\n", out_path);
        return;
    }
    for (i = 0; i < n_blocks; i++)
        if (blocks[i]->count)
            fprintf(f, "%" PRIx64 " %" PRIu64 " %u %u\n", blocks[i]->vaddr, blocks[i]->count,
                    blocks[i]->insns, blocks[i]->bytes);
    fclose(f);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv) {
    int i;
    (void)info;
    for (i = 0; i < argc; i++)
        if (strncmp(argv[i], "out=", 4) == 0)
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, write_counts, NULL);
    return 0;
}
