/* transport.c: every MPI call hpool makes; a rank's messages in and out. */
#define _GNU_SOURCE /* setenv, RTLD_DEFAULT */
#include "internal.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

static bool mpi_initialized_by_hpool;

int hpool_mpi_init(int *argc, char ***argv)
{
    hpool__detail_clear();
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized || !hpool__launched_by_mpi_launcher())
        return 0;
    /* UCX (Open MPI's pml ucx, MPICH's ch4:ucx) logs to stdout unless told
     * otherwise, and stdout is where programs print their results: a rank
     * whose peer died would write "UCX ERROR ... Endpoint timeout" into
     * them. UCX reads UCX_LOG_FILE when its libucs loads: under Open MPI
     * that is in MPI_Init (pml ucx is a plugin), after this; an MPICH
     * linked with UCX loaded it before main, and setting it now would only
     * make UCX warn, on stdout, that it goes unused. A setting of the
     * user's own is kept. */
    if (dlsym(RTLD_DEFAULT, "ucs_global_opts") == NULL)
        setenv("UCX_LOG_FILE", "stderr", 0);
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
        return hpool__fail(HPOOL_EMPI, "MPI_Init_thread failed");
    mpi_initialized_by_hpool = true;
    /* Errors come back as codes, so hpool can report them instead of dying. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (provided < MPI_THREAD_SERIALIZED)
        return hpool__fail(HPOOL_EMPILEVEL,
                           "MPI_Init_thread gave thread level %d, below MPI_THREAD_SERIALIZED (%d): use an MPI "
                           "built with thread support",
                           provided, MPI_THREAD_SERIALIZED);
    return 0;
}

int hpool_mpi_finalize(void)
{
    hpool__detail_clear();
    if (!mpi_initialized_by_hpool)
        return 0;
    /* their communicators and threads still use MPI */
    if (hpool__live_pools() > 0)
        return hpool__fail(HPOOL_EBUSY, "%d pool(s) of this process are not freed yet: call hpool_pool_free first",
                           hpool__live_pools());
    mpi_initialized_by_hpool = false;
    return MPI_Finalize() == MPI_SUCCESS ? 0 : hpool__fail(HPOOL_EMPI, "MPI_Finalize failed");
}

int hpool__transport_open(hpool__transport *transport, MPI_Comm comm)
{
    *transport = (hpool__transport){.comm = MPI_COMM_NULL, .rank = 0, .size = 1};
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized) {
        if (comm != MPI_COMM_NULL)
            return hpool__fail(HPOOL_EINVAL, "options.comm is set, but MPI is %s", finalized ? "finalised"
                                                                                           : "not initialised");
        /* A plain run: one rank, no MPI. Under a launcher that would split
         * the job into unrelated one-rank pools, so refuse it. */
        if (hpool__launched_by_mpi_launcher())
            return hpool__fail(HPOOL_ENOMPI,
                               "this process was started by mpirun or srun, but MPI is %s: call hpool_mpi_init "
                               "(or MPI_Init_thread) before hpool_pool_create",
                               finalized ? "already finalised" : "not initialised");
        return 0;
    }
    int provided = 0;
    MPI_Query_thread(&provided);
    if (provided < MPI_THREAD_SERIALIZED)
        return hpool__fail(HPOOL_EMPILEVEL,
                           "MPI was initialised at thread level %d: hpool needs MPI_THREAD_SERIALIZED (%d) or "
                           "MPI_THREAD_MULTIPLE; use hpool_mpi_init or MPI_Init_thread",
                           provided, MPI_THREAD_SERIALIZED);
    if (MPI_Comm_dup(comm == MPI_COMM_NULL ? MPI_COMM_WORLD : comm, &transport->comm) != MPI_SUCCESS)
        return hpool__fail(HPOOL_EMPI, "MPI_Comm_dup of options.comm failed: is it a valid communicator?");
    MPI_Comm_set_errhandler(transport->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(transport->comm, &transport->rank);
    MPI_Comm_size(transport->comm, &transport->size);
    transport->uses_mpi = true;
    return 0;
}

int hpool__transport_agree(hpool__transport *transport, uint64_t value, uint64_t *lowest, uint64_t *highest)
{
    *lowest = *highest = value;
    if (!transport->uses_mpi)
        return 0;
    /* One collective for both: the highest is the lowest of the
     * complements. In signed 64-bit integers, with the top bit flipped,
     * which keeps the unsigned order: Debian's MPICH (4.0) takes MPI_MIN on
     * MPI_UINT64_T as signed, so 2^63 came out lower than 5. */
    const uint64_t flip = (uint64_t)1 << 63;
    int64_t mine[2] = {(int64_t)(value ^ flip), ~(int64_t)(value ^ flip)}, agreed[2];
    if (MPI_Allreduce(mine, agreed, 2, MPI_INT64_T, MPI_MIN, transport->comm) != MPI_SUCCESS)
        return hpool__fail(HPOOL_EMPI, "MPI_Allreduce of the ranks' agreement failed");
    *lowest = (uint64_t)agreed[0] ^ flip;
    *highest = (uint64_t)~agreed[1] ^ flip;
    return 0;
}

/* One MPI message holds at most INT_MAX bytes; bigger ones travel as a
 * LARGE header and then pieces of this size, sent one after another on one
 * tag, so MPI delivers them in order. */
#define PIECE_BYTES ((size_t)1 << 30)

/* A buffer that several sends read: freed when the last one completes. */
typedef struct shared_buffer {
    void *data;
    size_t users;
} shared_buffer;

/* Starts one send of size bytes at data; owner is freed once it is done. */
static int start_send(hpool__transport *transport, int dest, int type, void *data, size_t size, void *owner,
                      shared_buffer *shared)
{
    hpool__pending_send *grown =
        hpool__grow_array(transport->sends, &transport->send_capacity, transport->send_count, sizeof *grown);
    if (grown == NULL)
        return hpool__fail(HPOOL_ENOMEM, "no memory to queue a send to rank %d", dest);
    transport->sends = grown;
    hpool__pending_send *send = &transport->sends[transport->send_count];
    /* Never a blocking send: two ranks sending big messages to each other
     * at once would wait on each other forever. */
    if (MPI_Isend(data, (int)size, MPI_BYTE, dest, HPOOL__TAG_BASE + type, transport->comm, &send->request)
        != MPI_SUCCESS)
        return hpool__fail(HPOOL_EMPI, "MPI_Isend of %zu bytes to rank %d failed", size, dest);
    send->buffer = owner;
    send->shared = shared;
    send->size = size;
    send->dest = dest;
    transport->pending_bytes += size;
    transport->send_count++;
    return 0;
}

/* A send finished: frees what it owned. */
static void release_send(hpool__pending_send *send)
{
    free(send->buffer);
    if (send->shared != NULL && --send->shared->users == 0) {
        free(send->shared->data);
        free(send->shared);
    }
}

int hpool__transport_send(hpool__transport *transport, int dest, int type, void *buffer, size_t size)
{
    if (size >= sizeof(uint32_t) && hpool__test_fault("corrupt_send"))
        ((unsigned char *)buffer)[0] ^= 0xff; /* the magic's first byte */
    if (size <= (size_t)INT32_MAX) {
        int rc = start_send(transport, dest, type, buffer, size, buffer, NULL);
        if (rc != 0)
            free(buffer);
        return rc;
    }
    hpool__large_header large = {.type = type, .size = size, .piece_size = PIECE_BYTES};
    void *header = NULL;
    size_t header_size = 0;
    shared_buffer *shared = hpool__malloc(sizeof *shared);
    if (shared == NULL || hpool__message_encode(HPOOL__MSG_LARGE, &large, sizeof large, &header, &header_size) != 0) {
        free(shared);
        free(buffer);
        return HPOOL_ENOMEM;
    }
    *shared = (shared_buffer){.data = buffer, .users = 1}; /* held until every piece is started */
    int rc = start_send(transport, dest, HPOOL__MSG_LARGE, header, header_size, header, NULL);
    if (rc != 0)
        free(header);
    for (size_t at = 0; rc == 0 && at < size; at += PIECE_BYTES) {
        shared->users++;
        rc = start_send(transport, dest, HPOOL__MSG_PIECE, (unsigned char *)buffer + at,
                        size - at < PIECE_BYTES ? size - at : PIECE_BYTES, NULL, shared);
        if (rc != 0)
            shared->users--;
    }
    if (--shared->users == 0) {
        free(shared->data);
        free(shared);
    }
    return rc;
}

int hpool__transport_send_to_all(hpool__transport *transport, int except, int type, void *buffer, size_t size)
{
    HPOOL__ASSERT(size <= (size_t)INT32_MAX); /* control messages only */
    shared_buffer *shared = hpool__malloc(sizeof *shared);
    if (shared == NULL) {
        free(buffer);
        return HPOOL_ENOMEM;
    }
    *shared = (shared_buffer){.data = buffer, .users = 1};
    int rc = 0;
    for (int rank = 0; rank < transport->size && rc == 0; rank++) {
        if (rank == except)
            continue;
        shared->users++;
        rc = start_send(transport, rank, type, buffer, size, NULL, shared);
        if (rc != 0)
            shared->users--;
    }
    if (--shared->users == 0) {
        free(shared->data);
        free(shared);
    }
    return rc;
}

void hpool__transport_abandon_sends_to(hpool__transport *transport, int rank)
{
    size_t kept = 0;
    for (size_t i = 0; i < transport->send_count; i++) {
        if (transport->sends[i].dest == rank) {
            MPI_Request_free(&transport->sends[i].request);
            transport->pending_bytes -= transport->sends[i].size;
        } else {
            transport->sends[kept++] = transport->sends[i];
        }
    }
    transport->send_count = kept;
}

int hpool__transport_progress(hpool__transport *transport)
{
    size_t kept = 0;
    for (size_t i = 0; i < transport->send_count; i++) {
        int done = 0;
        if (MPI_Test(&transport->sends[i].request, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return hpool__fail(HPOOL_EMPI, "MPI_Test of a send failed");
        if (done) {
            release_send(&transport->sends[i]);
            transport->pending_bytes -= transport->sends[i].size;
        } else
            transport->sends[kept++] = transport->sends[i];
    }
    transport->send_count = kept;
    return 0;
}

/* The pieces of a message whose LARGE header came from source: they follow
 * it on their own tag, already sent, so they are received as they come. */
static int receive_pieces(hpool__transport *transport, const hpool__message *large, hpool__message *message)
{
    hpool__large_header header;
    int source = large->source;
    if (hpool__message_decode(large, &header, sizeof header, NULL, NULL) != 0 || header.piece_size == 0
        || header.piece_size > (uint64_t)INT32_MAX || header.size > SIZE_MAX - 1 || header.type < HPOOL__MSG_BATCH
        || header.type >= HPOOL__MSG_LARGE)
        return HPOOL_EPEER;
    unsigned char *data = hpool__malloc((size_t)header.size + 1);
    if (data == NULL)
        return HPOOL_ENOMEM; /* the pieces stay queued: the error ends the engine */
    for (uint64_t at = 0; at < header.size; at += header.piece_size) {
        uint64_t piece = header.size - at < header.piece_size ? header.size - at : header.piece_size;
        MPI_Status status;
        int count = 0;
        if (MPI_Recv(data + at, (int)piece, MPI_BYTE, source, HPOOL__TAG_BASE + HPOOL__MSG_PIECE, transport->comm,
                     &status)
                != MPI_SUCCESS
            || MPI_Get_count(&status, MPI_BYTE, &count) != MPI_SUCCESS || (uint64_t)count != piece) {
            free(data);
            return HPOOL_EPEER;
        }
    }
    *message = (hpool__message){.type = header.type, .source = source, .data = data, .size = (size_t)header.size};
    return 1;
}

int hpool__transport_receive(hpool__transport *transport, hpool__message *message)
{
    if (!transport->uses_mpi)
        return 0;
    int arrived = 0;
    MPI_Status status;
    if (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, transport->comm, &arrived, &status) != MPI_SUCCESS)
        return hpool__fail(HPOOL_EMPI, "MPI_Iprobe failed");
    if (!arrived)
        return 0;
    int size = 0;
    MPI_Get_count(&status, MPI_BYTE, &size);
    void *data = hpool__malloc(size > 0 ? (size_t)size : 1);
    if (data == NULL)
        return hpool__fail(HPOOL_ENOMEM, "no memory for a message of %d bytes from rank %d", size,
                           status.MPI_SOURCE);
    if (MPI_Recv(data, size, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, transport->comm, MPI_STATUS_IGNORE)
        != MPI_SUCCESS) {
        free(data);
        return hpool__fail(HPOOL_EMPI, "MPI_Recv of %d bytes from rank %d failed", size, status.MPI_SOURCE);
    }
    int type = status.MPI_TAG - HPOOL__TAG_BASE;
    if (type == HPOOL__MSG_LARGE) {
        hpool__message large = {.type = type, .source = status.MPI_SOURCE, .data = data, .size = (size_t)size};
        int rc = receive_pieces(transport, &large, message);
        free(data);
        return rc;
    }
    if (type == HPOOL__MSG_PIECE) { /* a piece without its header */
        free(data);
        return hpool__fail(HPOOL_EPEER, "rank %d sent a piece of a large message without its header",
                           status.MPI_SOURCE);
    }
    *message = (hpool__message){.type = type, .source = status.MPI_SOURCE, .data = data, .size = (size_t)size};
    return 1;
}

int hpool__transport_flush(hpool__transport *transport)
{
    for (size_t i = 0; i < transport->send_count; i++) {
        if (MPI_Wait(&transport->sends[i].request, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return HPOOL_EMPI;
        release_send(&transport->sends[i]);
    }
    transport->send_count = 0;
    transport->pending_bytes = 0;
    return 0;
}

int hpool__transport_gather(hpool__transport *transport, int root, const void *data, size_t size, void **all,
                            size_t **sizes)
{
    *all = NULL;
    *sizes = NULL;
    bool is_root = transport->rank == root;
    if (!transport->uses_mpi) {
        *all = hpool__malloc(size ? size : 1);
        *sizes = hpool__malloc(sizeof **sizes);
        if (*all == NULL || *sizes == NULL) {
            free(*all);
            free(*sizes);
            *all = NULL;
            *sizes = NULL;
            return HPOOL_ENOMEM;
        }
        memcpy(*all, data, size);
        (*sizes)[0] = size;
        return 0;
    }
    if (size > (size_t)INT32_MAX)
        return HPOOL_EINVAL;
    int count = (int)size;
    int *counts = NULL, *displacements = NULL;
    if (is_root) {
        /* Without these the root cannot take part; the other ranks' small
         * sends go out eagerly, and pool creation fails on the root. */
        counts = hpool__malloc((size_t)transport->size * sizeof *counts);
        displacements = hpool__malloc((size_t)transport->size * sizeof *displacements);
        if (counts == NULL || displacements == NULL) {
            free(counts);
            free(displacements);
            return HPOOL_ENOMEM;
        }
    }
    int rc = 0;
    if (MPI_Gather(&count, 1, MPI_INT, counts, 1, MPI_INT, root, transport->comm) != MPI_SUCCESS)
        rc = HPOOL_EMPI;
    /* From here every rank takes part in the second collective whatever
     * happens to the root's allocations, or the others would wait forever:
     * a root short of memory receives nothing. */
    bool room = true;
    if (is_root && rc == 0) {
        size_t total = 0;
        for (int r = 0; r < transport->size; r++) {
            displacements[r] = (int)total;
            total += (size_t)counts[r];
            if (total > (size_t)INT32_MAX)
                total = (size_t)INT32_MAX + 1; /* cannot be addressed */
        }
        if (total <= (size_t)INT32_MAX) {
            *all = hpool__malloc(total ? total : 1);
            *sizes = hpool__malloc((size_t)transport->size * sizeof **sizes);
        }
        room = *all != NULL && *sizes != NULL;
        if (!room)
            for (int r = 0; r < transport->size; r++)
                counts[r] = displacements[r] = 0;
    }
    /* Older MPI bindings want a non-const send buffer. */
    if (rc == 0
        && MPI_Gatherv((void *)data, count, MPI_BYTE, *all, counts, displacements, MPI_BYTE, root, transport->comm)
               != MPI_SUCCESS)
        rc = HPOOL_EMPI;
    if (rc == 0 && !room)
        rc = HPOOL_ENOMEM;
    if (is_root && rc == 0)
        for (int r = 0; r < transport->size; r++)
            (*sizes)[r] = (size_t)counts[r];
    free(counts);
    free(displacements);
    if (rc != 0) {
        free(*all);
        free(*sizes);
        *all = NULL;
        *sizes = NULL;
    }
    return rc;
}

void hpool__transport_close(hpool__transport *transport)
{
    if (transport->uses_mpi) {
        hpool__transport_flush(transport);
        MPI_Comm_free(&transport->comm);
    }
    free(transport->sends);
    transport->sends = NULL;
    transport->uses_mpi = false;
}
