// SPDX-License-Identifier: Apache-2.0
//
// Batched copies through the runtime API: cudaMemcpyBatchAsync with two
// attribute sets (stream-ordered sources, and a source on the stack read
// during the call), host to device and device to device; then
// cudaMemcpy3DBatchAsync with a box of pitched memory from the host, a
// slice into a CUDA array and one out of another; the arguments CUDA
// refuses.  Only independent copies share a batch (CUDA orders none of
// them), so the program prints the same natively and through vgpu, and
// against tests/fakecuda in CI.
#include <cstdio>
#include <cstring>
#include <cuda_runtime.h>

#include "fake_kernels.cuh"

#define N 1000
#define X 16
#define Y 8
#define D 3

static int wrong(const int *got, const int *want, int n)
{
    int w = 0;

    for (int i = 0; i < n; i++)
        w += got[i] != want[i];
    return w;
}

int main()
{
    static int a[N], b[N], c[N], back[N];
    cudaStream_t s;
    int *d1, *d2, *d3, *d4;

    for (int i = 0; i < N; i++) {
        a[i] = i;
        b[i] = 7 * i + 1;
        c[i] = -i;
    }
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CHECK(cudaMalloc(&d1, sizeof(a)));
    CHECK(cudaMalloc(&d2, sizeof(a)));
    CHECK(cudaMalloc(&d3, sizeof(a)));
    CHECK(cudaMalloc(&d4, sizeof(a)));
    CHECK(cudaMemcpy(d3, c, sizeof(c), cudaMemcpyHostToDevice));

    // three independent copies: a to d1 and c (via d3) to d4 in stream order, then b's copy on
    // the stack, read during the call
    {
        int onstack[N];

        memcpy(onstack, b, sizeof(b));
        void *dsts[3] = { d1, d4, d2 };
        const void *srcs[3] = { a, d3, onstack };
        size_t sizes[3] = { sizeof(a), sizeof(c), sizeof(b) };
        cudaMemcpyAttributes attrs[2] = {};
        size_t idxs[2] = { 0, 2 };

        attrs[0].srcAccessOrder = cudaMemcpySrcAccessOrderStream;
        attrs[1].srcAccessOrder = cudaMemcpySrcAccessOrderDuringApiCall;
        CHECK(cudaMemcpyBatchAsync(dsts, srcs, sizes, 3, attrs, idxs, 2, s));
        memset(onstack, 0, sizeof(onstack));    // the call is over: the copy has its bytes
    }
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaMemcpy(back, d1, sizeof(back), cudaMemcpyDeviceToHost));
    printf("batch: host to device %d wrong", wrong(back, a, N));
    CHECK(cudaMemcpy(back, d2, sizeof(back), cudaMemcpyDeviceToHost));
    printf(", from the stack %d wrong", wrong(back, b, N));
    CHECK(cudaMemcpy(back, d4, sizeof(back), cudaMemcpyDeviceToHost));
    printf(", device to device %d wrong\n", wrong(back, c, N));

    // refused before anything is copied
    {
        void *dsts[2] = { d1, d2 };
        const void *srcs[2] = { a, b };
        size_t sizes[2] = { 4, 4 }, idxs[2] = { 0, 0 }, late[1] = { 1 };
        cudaMemcpyAttributes attrs[2] = {}, unset = {};

        attrs[0].srcAccessOrder = attrs[1].srcAccessOrder = cudaMemcpySrcAccessOrderStream;
        printf("refused: first index not 0 %s", cudaGetErrorName(cudaMemcpyBatchAsync(dsts, srcs, sizes, 2,
                                                                                     attrs, late, 1, s)));
        printf(", indices not increasing %s", cudaGetErrorName(cudaMemcpyBatchAsync(dsts, srcs, sizes, 2,
                                                                                  attrs, idxs, 2, s)));
        printf(", no access order %s", cudaGetErrorName(cudaMemcpyBatchAsync(dsts, srcs, sizes, 2, &unset,
                                                                           idxs, 1, s)));
        printf(", more attributes than copies %s\n",
               cudaGetErrorName(cudaMemcpyBatchAsync(dsts, srcs, sizes, 1, attrs, idxs, 2, s)));
        cudaGetLastError();
    }

    // 3D: a box of D slices from the host into pitched memory (rows of its own length), slice 1
    // of another pitched allocation into an array at (2, 3), and a slice of a second array out
    // to the host
    static int cube[D][Y][X], cube_back[D][Y][X], plane[Y][X], plane_back[Y][X];
    cudaPitchedPtr pp, pq;
    cudaArray_t arr, arr2;
    cudaChannelFormatDesc desc = cudaCreateChannelDesc<int>();
    cudaExtent e3 = make_cudaExtent(X * sizeof(int), Y, D);

    for (int z = 0; z < D; z++)
        for (int y = 0; y < Y; y++)
            for (int x = 0; x < X; x++)
                cube[z][y][x] = z * 1000 + y * 100 + x;
    for (int y = 0; y < Y; y++)
        for (int x = 0; x < X; x++)
            plane[y][x] = 5000 + y * 100 + x;
    CHECK(cudaMalloc3D(&pp, e3));
    CHECK(cudaMalloc3D(&pq, e3));
    CHECK(cudaMallocArray(&arr, &desc, 32, 16));
    CHECK(cudaMallocArray(&arr2, &desc, X, Y));
    {
        cudaMemcpy3DParms p = {};

        p.srcPtr = make_cudaPitchedPtr(cube, X * sizeof(int), X * sizeof(int), Y);
        p.dstPtr = pq;
        p.extent = e3;
        p.kind = cudaMemcpyHostToDevice;
        CHECK(cudaMemcpy3D(&p));
    }
    CHECK(cudaMemcpy2DToArray(arr2, 0, 0, plane, X * sizeof(int), X * sizeof(int), Y, cudaMemcpyHostToDevice));
    {
        cudaMemcpy3DBatchOp ops[3] = {};

        ops[0].src.type = cudaMemcpyOperandTypePointer;
        ops[0].src.op.ptr.ptr = cube;                     // rows and layers tightly packed
        ops[0].dst.type = cudaMemcpyOperandTypePointer;
        ops[0].dst.op.ptr.ptr = pp.ptr;
        ops[0].dst.op.ptr.rowLength = pp.pitch;           // in elements: bytes here
        ops[0].extent = e3;
        ops[0].srcAccessOrder = cudaMemcpySrcAccessOrderStream;
        ops[1].src.type = cudaMemcpyOperandTypePointer;
        ops[1].src.op.ptr.ptr = (char *)pq.ptr + pq.pitch * Y;   // slice 1
        ops[1].src.op.ptr.rowLength = pq.pitch / sizeof(int);
        ops[1].dst.type = cudaMemcpyOperandTypeArray;
        ops[1].dst.op.array.array = arr;
        ops[1].dst.op.array.offset = { 2, 3, 0 };
        ops[1].extent = make_cudaExtent(X, Y, 1);
        ops[1].srcAccessOrder = cudaMemcpySrcAccessOrderStream;
        ops[2].src.type = cudaMemcpyOperandTypeArray;
        ops[2].src.op.array.array = arr2;
        ops[2].src.op.array.offset = { 0, 0, 0 };
        ops[2].dst.type = cudaMemcpyOperandTypePointer;
        ops[2].dst.op.ptr.ptr = plane_back;
        ops[2].extent = make_cudaExtent(X, Y, 1);
        ops[2].srcAccessOrder = cudaMemcpySrcAccessOrderStream;
        CHECK(cudaMemcpy3DBatchAsync(3, ops, 0, s));
        CHECK(cudaStreamSynchronize(s));

        cudaMemcpy3DParms p = {};
        p.srcPtr = pp;
        p.dstPtr = make_cudaPitchedPtr(cube_back, X * sizeof(int), X * sizeof(int), Y);
        p.extent = e3;
        p.kind = cudaMemcpyDeviceToHost;
        CHECK(cudaMemcpy3D(&p));
        int row[X];
        CHECK(cudaMemcpy2DFromArray(row, sizeof(row), arr, 2 * sizeof(int), 3 + 7, sizeof(row), 1,
                                    cudaMemcpyDeviceToHost));
        printf("3D batch: a box from the host %s; a slice into an array: row 7 %d ... %d (want %d %d); "
               "a slice out of one %s\n",
               memcmp(cube, cube_back, sizeof(cube)) ? "differs" : "same", row[0], row[X - 1],
               cube[1][7][0], cube[1][7][X - 1], memcmp(plane, plane_back, sizeof(plane)) ? "differs" : "same");

        ops[0].extent.depth = 0;
        printf("refused: an empty extent %s", cudaGetErrorName(cudaMemcpy3DBatchAsync(3, ops, 0, s)));
        ops[0].extent = e3;
        printf(", flags %s", cudaGetErrorName(cudaMemcpy3DBatchAsync(3, ops, 1, s)));
        ops[2].dst.op.ptr.rowLength = X - 1;
        printf(", a row shorter than the copy %s\n", cudaGetErrorName(cudaMemcpy3DBatchAsync(3, ops, 0, s)));
        cudaGetLastError();
    }

    CHECK(cudaFreeArray(arr));
    CHECK(cudaFreeArray(arr2));
    CHECK(cudaFree(pp.ptr));
    CHECK(cudaFree(pq.ptr));
    CHECK(cudaFree(d1));
    CHECK(cudaFree(d2));
    CHECK(cudaFree(d3));
    CHECK(cudaFree(d4));
    CHECK(cudaStreamDestroy(s));
    printf("freed\n");
    return 0;
}
