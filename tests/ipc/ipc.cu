// SPDX-License-Identifier: Apache-2.0
//
// CUDA IPC between processes of one VM, and refused across VMs: run as
//   ipc export DIR    allocates and fills a buffer, exports it and an
//                     interprocess event into DIR/handle, waits for
//                     DIR/done, then checks what the importer wrote
//   ipc import DIR    opens both handles, waits on the event, doubles the
//                     buffer with a kernel, closes it, writes DIR/done
//   ipc intrude DIR   (a process of another VM) tries to open both handles
// The kernels are named as tests/fakecuda emulates them.  With
// VGPU_TEST_REFUSALS the importer also tries a made-up handle.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>
#include <string>
#include <unistd.h>

#include "fake_kernels.cuh"

static const int N = 4096;

struct handles {
    cudaIpcMemHandle_t mem;
    cudaIpcEventHandle_t event;
};

// Waits up to 30 s for path to exist.
static bool wait_file(const std::string &path)
{
    for (int i = 0; i < 3000; i++) {
        if (access(path.c_str(), F_OK) == 0)
            return true;
        usleep(10000);
    }
    fprintf(stderr, "ipc: no %s after 30 s\n", path.c_str());
    return false;
}

static bool read_handles(const std::string &dir, handles *h)
{
    FILE *f;

    if (!wait_file(dir + "/handle") || !(f = fopen((dir + "/handle").c_str(), "rb")))
        return false;
    bool ok = fread(h, sizeof(*h), 1, f) == 1;
    fclose(f);
    return ok;
}

static int count(const int *h, int want)
{
    int n = 0;

    for (int i = 0; i < N; i++)
        n += h[i] == want;
    return n;
}

int main(int argc, char **argv)
{
    const size_t bytes = N * sizeof(int);
    int *host = (int *)malloc(bytes);
    unsigned blocks = (N + 255) / 256;
    handles h;

    if (argc != 3) {
        fprintf(stderr, "usage: ipc export|import|intrude DIR\n");
        return 2;
    }
    std::string mode = argv[1], dir = argv[2];
    if (mode == "export") {
        int *b;
        cudaEvent_t ev;

        CHECK(cudaMalloc(&b, bytes));
        fake_fill<<<(unsigned)((bytes + 255) / 256), 256>>>(b, 1, bytes);
        CHECK(cudaIpcGetMemHandle(&h.mem, b));
        cudaIpcMemHandle_t again;
        CHECK(cudaIpcGetMemHandle(&again, b));    // a second export changes nothing
        printf("exported twice: %s\n", memcmp(&again, &h.mem, sizeof(again)) ? "another handle" : "the same handle");
        CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming | cudaEventInterprocess));
        CHECK(cudaEventRecord(ev, 0));
        CHECK(cudaIpcGetEventHandle(&h.event, ev));
        CHECK(cudaDeviceSynchronize());
        FILE *f = fopen((dir + "/handle.tmp").c_str(), "wb");
        if (!f || fwrite(&h, sizeof(h), 1, f) != 1 || fclose(f) ||
            rename((dir + "/handle.tmp").c_str(), (dir + "/handle").c_str()))
            return 1;
        printf("exporter: buffer and event exported\n");
        if (!wait_file(dir + "/done"))
            return 1;
        CHECK(cudaMemcpy(host, b, bytes, cudaMemcpyDeviceToHost));
        printf("exporter sees the importer's kernel: %d of %d doubled\n", count(host, 2 * 0x01010101), N);
        CHECK(cudaEventDestroy(ev));
        CHECK(cudaFree(b));
    } else if (mode == "import") {
        void *p = NULL;
        cudaEvent_t ev;

        if (!read_handles(dir, &h))
            return 1;
        CHECK(cudaIpcOpenMemHandle(&p, h.mem, cudaIpcMemLazyEnablePeerAccess));
        CHECK(cudaIpcOpenEventHandle(&ev, h.event));
        CHECK(cudaStreamWaitEvent(0, ev, 0));
        CHECK(cudaMemcpy(host, p, bytes, cudaMemcpyDefault));    // known as device memory
        printf("importer reads the exporter's buffer: %d of %d filled\n", count(host, 0x01010101), N);
        fake_add<<<blocks, 256>>>((int *)p, (int *)p, (int *)p, N);
        CHECK(cudaDeviceSynchronize());
        CHECK(cudaIpcCloseMemHandle(p));
        CHECK(cudaEventDestroy(ev));
        printf("importer: doubled it and closed the handle\n");
        if (getenv("VGPU_TEST_REFUSALS")) {
            cudaIpcMemHandle_t bad;

            memset(&bad, 0x5a, sizeof(bad));
            printf("a made-up handle: %s\n",
                   cudaGetErrorName(cudaIpcOpenMemHandle(&p, bad, cudaIpcMemLazyEnablePeerAccess)));
            cudaGetLastError();
            printf("closing memory never opened: %s\n", cudaGetErrorName(cudaIpcCloseMemHandle(host)));
            cudaGetLastError();
        }
        FILE *f = fopen((dir + "/done").c_str(), "w");
        if (!f || fclose(f))
            return 1;
    } else {
        void *p = NULL;
        cudaEvent_t ev;

        if (!read_handles(dir, &h))
            return 1;
        printf("another VM opens the buffer: %s\n",
               cudaGetErrorName(cudaIpcOpenMemHandle(&p, h.mem, cudaIpcMemLazyEnablePeerAccess)));
        cudaGetLastError();
        printf("another VM opens the event: %s\n", cudaGetErrorName(cudaIpcOpenEventHandle(&ev, h.event)));
        cudaGetLastError();
    }
    free(host);
    return 0;
}
