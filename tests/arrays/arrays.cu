// SPDX-License-Identifier: Apache-2.0
//
// CUDA arrays, texture and surface objects through the runtime API: a 2D
// array of ints filled from the host, read back whole and in part, copied
// to and from device memory, written and read with the 1D forms across
// rows; a texture object over it read by a kernel, its descriptors read
// back; a surface object; copies between two arrays (2D, 1D, 3D); 3D
// copies, between devices' memory too (on device 0); everything freed.  fake_tex_read is emulated by tests/fakecuda by name,
// so the program runs against the fake in CI and on a GPU natively and
// through vgpu for a differential test.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

#include "fake_kernels.cuh"

#define W 64
#define H 32

__global__ void fake_tex_read(int *out, cudaTextureObject_t tex, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n)
        out[i] = tex2D<int>(tex, (i % W) + 0.5f, (i / W) + 0.5f);
}

int main()
{
    static int h[W * H], back[W * H];
    cudaChannelFormatDesc desc = cudaCreateChannelDesc<int>(), got;
    cudaArray_t arr, surf_arr;
    cudaExtent ext;
    unsigned int flags;
    int *dev, wrong = 0;

    for (int i = 0; i < W * H; i++)
        h[i] = i * 3 + 1;
    CHECK(cudaMallocArray(&arr, &desc, W, H));
    CHECK(cudaArrayGetInfo(&got, &ext, &flags, arr));
    printf("array: %zu x %zu, channel x %d bits, kind %d\n", ext.width, ext.height, got.x, (int)got.f);
    CHECK(cudaMemcpy2DToArray(arr, 0, 0, h, W * sizeof(int), W * sizeof(int), H, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy2DFromArray(back, W * sizeof(int), arr, 0, 0, W * sizeof(int), H, cudaMemcpyDeviceToHost));
    for (int i = 0; i < W * H; i++)
        wrong += back[i] != h[i];
    printf("host to array and back: %d wrong\n", wrong);

    // an 8 x 4 block at column 4, row 2
    int block[4][8];
    CHECK(cudaMemcpy2DFromArray(block, sizeof(block[0]), arr, 4 * sizeof(int), 2, sizeof(block[0]), 4,
                                cudaMemcpyDeviceToHost));
    printf("block: %d %d ... %d (from %d %d ... %d)\n", block[0][0], block[0][1], block[3][7],
           h[2 * W + 4], h[2 * W + 5], h[5 * W + 11]);

    // through device memory
    CHECK(cudaMalloc(&dev, sizeof(h)));
    CHECK(cudaMemcpy2DFromArray(dev, W * sizeof(int), arr, 0, 0, W * sizeof(int), H, cudaMemcpyDeviceToDevice));
    memset(back, 0, sizeof(back));
    CHECK(cudaMemcpy(back, dev, sizeof(back), cudaMemcpyDeviceToHost));
    wrong = 0;
    for (int i = 0; i < W * H; i++)
        wrong += back[i] != h[i];
    printf("array to device memory: %d wrong\n", wrong);

    // the 1D forms (deprecated, still in programs), 100 ints from row 1, column 60 on: across two rows
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    int line[100], line_back[100];
    for (int i = 0; i < 100; i++)
        line[i] = -i;
    CHECK(cudaMemcpyToArray(arr, 60 * sizeof(int), 1, line, sizeof(line), cudaMemcpyHostToDevice));
    CHECK(cudaMemcpyFromArray(line_back, arr, 60 * sizeof(int), 1, sizeof(line_back), cudaMemcpyDeviceToHost));
#pragma GCC diagnostic pop
    CHECK(cudaMemcpy2DFromArray(back, W * sizeof(int), arr, 0, 0, W * sizeof(int), H, cudaMemcpyDeviceToHost));
    printf("1D forms: %s, row 2 starts %d %d\n", memcmp(line, line_back, sizeof(line)) ? "differ" : "same",
           back[2 * W], back[2 * W + 1]);
    CHECK(cudaMemcpy2DToArray(arr, 0, 0, h, W * sizeof(int), W * sizeof(int), H, cudaMemcpyHostToDevice));

    // a texture over the array, read by a kernel
    cudaResourceDesc res;
    memset(&res, 0, sizeof(res));
    res.resType = cudaResourceTypeArray;
    res.res.array.array = arr;
    cudaTextureDesc td;
    memset(&td, 0, sizeof(td));
    td.addressMode[0] = td.addressMode[1] = cudaAddressModeClamp;
    td.filterMode = cudaFilterModePoint;
    td.readMode = cudaReadModeElementType;
    cudaTextureObject_t tex;
    CHECK(cudaCreateTextureObject(&tex, &res, &td, NULL));
    fake_tex_read<<<(W * H + 255) / 256, 256>>>(dev, tex, W * H);
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(back, dev, sizeof(back), cudaMemcpyDeviceToHost));
    wrong = 0;
    for (int i = 0; i < W * H; i++)
        wrong += back[i] != h[i];
    printf("texture read by a kernel: %d wrong\n", wrong);
    cudaTextureDesc td_back;
    CHECK(cudaGetTextureObjectTextureDesc(&td_back, tex));
    printf("texture descriptor back: filter %s, clamp %s\n",
           td_back.filterMode == cudaFilterModePoint ? "point" : "other",
           td_back.addressMode[0] == cudaAddressModeClamp ? "yes" : "no");
    cudaResourceDesc res_back;
    memset(&res_back, 0, sizeof(res_back));
    CHECK(cudaGetTextureObjectResourceDesc(&res_back, tex));
    printf("texture resource back: %s, the same array %s\n",
           res_back.resType == cudaResourceTypeArray ? "an array" : "other",
           res_back.res.array.array == arr ? "yes" : "no");
    CHECK(cudaDestroyTextureObject(tex));

    // a surface over an array made for it
    cudaSurfaceObject_t surf;
    CHECK(cudaMallocArray(&surf_arr, &desc, W, H, cudaArraySurfaceLoadStore));
    res.res.array.array = surf_arr;
    CHECK(cudaCreateSurfaceObject(&surf, &res));
    printf("surface object: %s\n", surf ? "made" : "none");
    memset(&res_back, 0, sizeof(res_back));
    CHECK(cudaGetSurfaceObjectResourceDesc(&res_back, surf));
    printf("surface resource back: %s, the same array %s\n",
           res_back.resType == cudaResourceTypeArray ? "an array" : "other",
           res_back.res.array.array == surf_arr ? "yes" : "no");
    CHECK(cudaDestroySurfaceObject(surf));

    // between two arrays: all of it, a block, the 1D form across rows, a 3D box (sync and async)
    cudaArray_t arr2;
    int zero[W * H] = {};
    CHECK(cudaMallocArray(&arr2, &desc, W, H));
    CHECK(cudaMemcpy2DArrayToArray(arr2, 0, 0, arr, 0, 0, W * sizeof(int), H));
    CHECK(cudaMemcpy2DFromArray(back, W * sizeof(int), arr2, 0, 0, W * sizeof(int), H, cudaMemcpyDeviceToHost));
    wrong = 0;
    for (int i = 0; i < W * H; i++)
        wrong += back[i] != h[i];
    printf("array to array: %d wrong\n", wrong);
    CHECK(cudaMemcpy2DToArray(arr2, 0, 0, zero, W * sizeof(int), W * sizeof(int), H, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy2DArrayToArray(arr2, 8 * sizeof(int), 4, arr, 0, 0, 16 * sizeof(int), 2,
                                   cudaMemcpyDeviceToDevice));
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    CHECK(cudaMemcpyArrayToArray(arr2, 60 * sizeof(int), 10, arr, 0, 0, 100 * sizeof(int)));
#pragma GCC diagnostic pop
    {
        cudaMemcpy3DParms p = {};

        p.srcArray = arr;
        p.srcPos = make_cudaPos(1, 2, 0);
        p.dstArray = arr2;
        p.dstPos = make_cudaPos(0, 20, 0);
        p.extent = make_cudaExtent(4, 3, 1);
        p.kind = cudaMemcpyDeviceToDevice;
        CHECK(cudaMemcpy3D(&p));
        p.dstPos = make_cudaPos(10, 25, 0);
        CHECK(cudaMemcpy3DAsync(&p, 0));
        CHECK(cudaStreamSynchronize(0));
    }
    CHECK(cudaMemcpy2DFromArray(back, W * sizeof(int), arr2, 0, 0, W * sizeof(int), H, cudaMemcpyDeviceToHost));
    printf("a block: %d %d (want %d %d); 1D: %d %d %d (want %d %d %d); 3D: %d %d %d (want %d %d %d)\n",
           back[4 * W + 8], back[5 * W + 23], h[0], h[W + 15],
           back[10 * W + 60], back[11 * W], back[12 * W + 31], h[0], h[4], h[99],
           back[20 * W], back[22 * W + 3], back[27 * W + 13], h[2 * W + 1], h[4 * W + 4], h[4 * W + 4]);
    printf("array to array one row past the end: %s\n",
           cudaGetErrorName(cudaMemcpy2DArrayToArray(arr2, 0, 1, arr, 0, 0, W * sizeof(int), H)));
    cudaGetLastError();

    // outside the array: refused, as natively
    printf("a copy one row past the end: %s\n",
           cudaGetErrorName(cudaMemcpy2DToArray(arr, 0, 1, h, W * sizeof(int), W * sizeof(int), H,
                                                cudaMemcpyHostToDevice)));
    cudaGetLastError();

    if (getenv("VGPU_TEST_REFUSALS")) {
        // handles and memory that are not the program's: the server refuses them itself
        cudaTextureObject_t t2;
        res.res.array.array = (cudaArray_t)0x1234;
        printf("a texture over a foreign array: %s\n",
               cudaGetErrorName(cudaCreateTextureObject(&t2, &res, &td, NULL)));
        memset(&res, 0, sizeof(res));
        res.resType = cudaResourceTypeLinear;
        res.res.linear.devPtr = dev;
        res.res.linear.desc = desc;
        res.res.linear.sizeInBytes = sizeof(h) + 4096;
        printf("a texture past its memory's end: %s\n",
               cudaGetErrorName(cudaCreateTextureObject(&t2, &res, &td, NULL)));
        printf("freeing a foreign array: %s\n", cudaGetErrorName(cudaFreeArray((cudaArray_t)0x1234)));
        printf("copying to a foreign array: %s\n",
               cudaGetErrorName(cudaMemcpy2DToArray((cudaArray_t)0x1234, 0, 0, h, 16, 16, 1,
                                                    cudaMemcpyHostToDevice)));
        printf("copying from a foreign array to an array: %s\n",
               cudaGetErrorName(cudaMemcpy2DArrayToArray(arr2, 0, 0, (cudaArray_t)0x1234, 0, 0, 16, 1)));
        printf("a destroyed texture's resource: %s\n",
               cudaGetErrorName(cudaGetTextureObjectResourceDesc(&res_back, tex)));
        cudaGetLastError();
    }
    // 3D: a pitched allocation of 4 slices, set, filled from the host and read back; a
    // slice copied into the array and out again
    {
        const int D = 4, X = 16, Y = 8;
        static int cube[D][Y][X], cube_back[D][Y][X];
        cudaExtent e3 = make_cudaExtent(X * sizeof(int), Y, D);
        cudaPitchedPtr pp;
        cudaMemcpy3DParms p = {};

        for (int z = 0; z < D; z++)
            for (int y = 0; y < Y; y++)
                for (int x = 0; x < X; x++)
                    cube[z][y][x] = z * 1000 + y * 100 + x;
        CHECK(cudaMalloc3D(&pp, e3));
        CHECK(cudaMemset3D(pp, 0xff, e3));
        p.srcPtr = pp;
        p.dstPtr = make_cudaPitchedPtr(cube_back, X * sizeof(int), X * sizeof(int), Y);
        p.extent = e3;
        p.kind = cudaMemcpyDeviceToHost;
        CHECK(cudaMemcpy3D(&p));
        printf("3D memset: first %d\n", cube_back[0][0][0]);
        p = cudaMemcpy3DParms{};
        p.srcPtr = make_cudaPitchedPtr(cube, X * sizeof(int), X * sizeof(int), Y);
        p.dstPtr = pp;
        p.extent = e3;
        p.kind = cudaMemcpyHostToDevice;
        CHECK(cudaMemcpy3D(&p));
        p.srcPtr = pp;
        p.dstPtr = make_cudaPitchedPtr(cube_back, X * sizeof(int), X * sizeof(int), Y);
        p.kind = cudaMemcpyDeviceToHost;
        CHECK(cudaMemcpy3D(&p));
        printf("3D copies: %s, pitch %s\n", memcmp(cube, cube_back, sizeof(cube)) ? "differ" : "same",
               pp.pitch >= X * sizeof(int) ? "at least the width" : "short");
        // slice 2 into the array at element (3, 5), then back out to the host
        p = cudaMemcpy3DParms{};
        p.srcPtr = pp;
        p.srcPos = make_cudaPos(0, 0, 2);
        p.dstArray = arr;
        p.dstPos = make_cudaPos(3, 5, 0);
        p.extent = make_cudaExtent(X, Y, 1);
        p.kind = cudaMemcpyDeviceToDevice;
        CHECK(cudaMemcpy3D(&p));
        CHECK(cudaMemcpy2DFromArray(back, W * sizeof(int), arr, 0, 0, W * sizeof(int), H, cudaMemcpyDeviceToHost));
        printf("a slice into the array: %d %d (want %d %d)\n", back[5 * W + 3], back[12 * W + 18],
               cube[2][0][0], cube[2][7][15]);

        // the peer forms on device 0: the whole cube into a second allocation, then slice 3 of
        // it into the array, asynchronously; a device that is not there is refused
        cudaPitchedPtr pp2;
        cudaMemcpy3DPeerParms q = {};
        CHECK(cudaMalloc3D(&pp2, e3));
        q.srcPtr = pp;
        q.dstPtr = pp2;
        q.extent = e3;
        CHECK(cudaMemcpy3DPeer(&q));
        p = cudaMemcpy3DParms{};
        p.srcPtr = pp2;
        p.dstPtr = make_cudaPitchedPtr(cube_back, X * sizeof(int), X * sizeof(int), Y);
        p.extent = e3;
        p.kind = cudaMemcpyDeviceToHost;
        memset(cube_back, 0, sizeof(cube_back));
        CHECK(cudaMemcpy3D(&p));
        q = cudaMemcpy3DPeerParms{};
        q.srcPtr = pp2;
        q.srcPos = make_cudaPos(0, 0, 3);
        q.dstArray = arr;
        q.dstPos = make_cudaPos(40, 20, 0);
        q.extent = make_cudaExtent(X, Y, 1);
        CHECK(cudaMemcpy3DPeerAsync(&q, 0));
        CHECK(cudaStreamSynchronize(0));
        CHECK(cudaMemcpy2DFromArray(back, W * sizeof(int), arr, 0, 0, W * sizeof(int), H, cudaMemcpyDeviceToHost));
        printf("3D peer copies on device 0: %s; a slice into the array: %d %d (want %d %d)\n",
               memcmp(cube, cube_back, sizeof(cube)) ? "differ" : "same", back[20 * W + 40],
               back[27 * W + 55], cube[3][0][0], cube[3][7][15]);
        q.dstDevice = 99;
        printf("a 3D peer copy to device 99: %s\n", cudaGetErrorName(cudaMemcpy3DPeer(&q)));
        cudaGetLastError();
        CHECK(cudaFree(pp2.ptr));
        CHECK(cudaFree(pp.ptr));
    }

    // a mipmapped array: each level's extent, and data through each level's array
    {
        const int MW = 64, MH = 32, LEVELS = 4;
        static int lv[MW * MH], lv_back[MW * MH];
        cudaMipmappedArray_t mm;
        cudaChannelFormatDesc md = cudaCreateChannelDesc<int>();
        int same = 0;

        // 10 levels asked of a 64 x 32 array: CUDA makes the 7 there are room for
        CHECK(cudaMallocMipmappedArray(&mm, &md, make_cudaExtent(MW, MH, 0), 10, 0));
        for (int l = 0; l < LEVELS; l++) {
            cudaArray_t la;
            cudaExtent le;
            cudaChannelFormatDesc ld;
            unsigned int lflags;
            size_t w = MW >> l, hgt = MH >> l;

            CHECK(cudaGetMipmappedArrayLevel(&la, mm, l));
            CHECK(cudaArrayGetInfo(&ld, &le, &lflags, la));
            printf("mipmap level %d: %zu x %zu\n", l, le.width, le.height);
            for (size_t i = 0; i < w * hgt; i++)
                lv[i] = (int)(l * 100000 + i);
            CHECK(cudaMemcpy2DToArray(la, 0, 0, lv, w * sizeof(int), w * sizeof(int), hgt,
                                      cudaMemcpyHostToDevice));
            CHECK(cudaMemcpy2DFromArray(lv_back, w * sizeof(int), la, 0, 0, w * sizeof(int), hgt,
                                        cudaMemcpyDeviceToHost));
            same += !memcmp(lv, lv_back, w * hgt * sizeof(int));
        }
        printf("mipmap levels read back as written: %d of %d\n", same, LEVELS);
        {
            cudaArray_t last;
            cudaExtent le;
            cudaChannelFormatDesc ld;
            unsigned int lflags;

            CHECK(cudaGetMipmappedArrayLevel(&last, mm, 6));
            CHECK(cudaArrayGetInfo(&ld, &le, &lflags, last));
            printf("mipmap level 6, the last: %zu x %zu\n", le.width, le.height);
        }
        if (getenv("VGPU_TEST_REFUSALS")) {
            cudaArray_t la;

            CHECK(cudaGetMipmappedArrayLevel(&la, mm, 1));
            printf("freeing a level's array: %s\n", cudaGetErrorName(cudaFreeArray(la)));
            printf("a level past the last: %s\n",
                   cudaGetErrorName(cudaGetMipmappedArrayLevel(&la, mm, 7)));
            cudaGetLastError();
        }
        CHECK(cudaFreeMipmappedArray(mm));
    }

    {
        // sparse arrays: the tile shape and the mip tail are the device's; a plain array has none
        cudaArray_t sp;
        cudaMipmappedArray_t smm;
        cudaArraySparseProperties p;
        cudaChannelFormatDesc fd = cudaCreateChannelDesc<float>();

        CHECK(cudaMallocArray(&sp, &fd, 1024, 1024, cudaArraySparse));
        CHECK(cudaArrayGetSparseProperties(&p, sp));
        printf("sparse array: tile %u x %u x %u\n", p.tileExtent.width, p.tileExtent.height,
               p.tileExtent.depth);
        printf("a plain array's sparse properties: %s\n",
               cudaGetErrorName(cudaArrayGetSparseProperties(&p, arr)));
        cudaGetLastError();
        CHECK(cudaMallocMipmappedArray(&smm, &fd, make_cudaExtent(1024, 1024, 0), 11, cudaArraySparse));
        CHECK(cudaMipmappedArrayGetSparseProperties(&p, smm));
        printf("sparse mipmapped array: tile %u x %u, mip tail from level %u, %s\n",
               p.tileExtent.width, p.tileExtent.height, p.miptailFirstLevel,
               p.miptailSize ? "some bytes" : "empty");
        CHECK(cudaFreeMipmappedArray(smm));
        CHECK(cudaFreeArray(sp));
    }

    CHECK(cudaFreeArray(arr));
    CHECK(cudaFreeArray(arr2));
    CHECK(cudaFreeArray(surf_arr));
    CHECK(cudaFree(dev));
    printf("freed\n");
    return 0;
}
