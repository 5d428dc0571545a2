// SPDX-License-Identifier: Apache-2.0
//
// CUDA graphs through the runtime API (vgpu's libcudart.so.13 on vgpu's
// libcuda.so.1): a stream capture of kernels and a device copy,
// instantiated and launched many times; a graph built by hand from memset
// and kernel nodes with a dependency, its kernel node read back and
// changed in the executable graph; nodes and edges listed; a dot file;
// launch attributes of a kernel node and a stream read back;
// a captured memcpy node read back; graph memory (an allocation node and
// a free node added through cudaGraphAddNode, and a captured cudaMallocAsync
// and cudaFreeAsync), each graph launched three times; conditional nodes (a
// while loop whose body counts down through cudaGraphSetConditional, an
// if/else); everything destroyed.  The kernels are named as tests/fakecuda emulates them, so the
// program runs against the fake runtime in CI and on a GPU natively and
// through vgpu for a differential test.
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

#include "fake_kernels.cuh"

static const int N = 4096;

static int wrong(const int *h, int want)
{
    int bad = 0;

    for (int i = 0; i < N; i++)
        bad += h[i] != want;
    return bad;
}

int main()
{
    const size_t bytes = N * sizeof(int);
    int *a, *b, *c, *d, *h = (int *)malloc(bytes);
    cudaStream_t s;
    cudaGraph_t g, g2;
    cudaGraphExec_t e, e2;
    cudaStreamCaptureStatus cs;
    size_t n = 0;
    unsigned blocks = (N + 255) / 256;

    CHECK(cudaMalloc(&a, bytes));
    CHECK(cudaMalloc(&b, bytes));
    CHECK(cudaMalloc(&c, bytes));
    CHECK(cudaMalloc(&d, bytes));
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CHECK(cudaMemset(a, 0, bytes));
    CHECK(cudaMemset(c, 0, bytes));

    // 1. capture: b = 0x01010101 bytes, c += b, d = c; launched ten times
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CHECK(cudaStreamIsCapturing(s, &cs));
    printf("capturing: %s\n", cs == cudaStreamCaptureStatusActive ? "active" : "not active");
    fake_fill<<<(unsigned)((bytes + 255) / 256), 256, 0, s>>>(b, 1, bytes);
    fake_add<<<blocks, 256, 0, s>>>(c, c, b, N);
    CHECK(cudaMemcpyAsync(d, c, bytes, cudaMemcpyDeviceToDevice, s));
    CHECK(cudaStreamEndCapture(s, &g));
    CHECK(cudaStreamIsCapturing(s, &cs));
    printf("after the capture: %s\n", cs == cudaStreamCaptureStatusNone ? "not capturing" : "capturing");
    CHECK(cudaGraphGetNodes(g, NULL, &n));
    printf("captured graph: %zu nodes\n", n);
    {
        // a captured kernel node's parameters read back and set again unchanged
        cudaGraphNode_t nodes[8];
        size_t k = 8;
        int kernels = 0, same = 0;

        CHECK(cudaGraphGetNodes(g, nodes, &k));
        for (size_t i = 0; i < k; i++) {
            cudaGraphNodeType t;
            cudaKernelNodeParams p;

            CHECK(cudaGraphNodeGetType(nodes[i], &t));
            if (t != cudaGraphNodeTypeKernel)
                continue;
            kernels++;
            CHECK(cudaGraphKernelNodeGetParams(nodes[i], &p));
            same += cudaGraphKernelNodeSetParams(nodes[i], &p) == cudaSuccess;
        }
        printf("captured kernel nodes: %d, set back as read: %d\n", kernels, same);
    }
    CHECK(cudaGraphInstantiate(&e, g, 0));
    for (int i = 0; i < 10; i++)
        CHECK(cudaGraphLaunch(e, s));
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
    printf("after 10 launches: d[0] = %d, %d wrong\n", h[0], wrong(h, 10 * 0x01010101));

    // 2. by hand: memset a to 0, then c = a + b (depends on the memset)
    cudaGraphNode_t ms, kn, roots[4];
    cudaMemsetParams mp = {};
    mp.dst = a;
    mp.value = 0;
    mp.elementSize = 4;
    mp.width = N;
    mp.height = 1;
    CHECK(cudaGraphCreate(&g2, 0));
    CHECK(cudaGraphAddMemsetNode(&ms, g2, NULL, 0, &mp));
    int count = N;
    void *args[] = { &c, &a, &b, &count };
    cudaKernelNodeParams kp = {};
    kp.func = (void *)fake_add;
    kp.gridDim = dim3(blocks);
    kp.blockDim = dim3(256);
    kp.kernelParams = args;
    CHECK(cudaGraphAddKernelNode(&kn, g2, &ms, 1, &kp));
    n = 4;
    CHECK(cudaGraphGetRootNodes(g2, roots, &n));
    cudaGraphNodeType t;
    CHECK(cudaGraphNodeGetType(roots[0], &t));
    printf("hand-built graph: %zu root, a %s node\n", n, t == cudaGraphNodeTypeMemset ? "memset" : "other");
    cudaKernelNodeParams back = {};
    CHECK(cudaGraphKernelNodeGetParams(kn, &back));
    printf("kernel node reads back: %s, grid %u, count %d\n",
           back.func == (void *)fake_add ? "fake_add" : "another function", back.gridDim.x,
           *(int *)back.kernelParams[3]);
    CHECK(cudaGraphInstantiateWithFlags(&e2, g2, 0));
    CHECK(cudaGraphLaunch(e2, s));
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaMemcpy(h, c, bytes, cudaMemcpyDeviceToHost));
    printf("memset then add: c[0] = %d, %d wrong\n", h[0], wrong(h, 0x01010101));

    // the kernel node changed in the executable graph: c = b + b
    void *args2[] = { &c, &b, &b, &count };
    kp.kernelParams = args2;
    CHECK(cudaGraphExecKernelNodeSetParams(e2, kn, &kp));
    CHECK(cudaGraphLaunch(e2, s));
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaMemcpy(h, c, bytes, cudaMemcpyDeviceToHost));
    printf("after cudaGraphExecKernelNodeSetParams: c[0] = %d, %d wrong\n", h[0], wrong(h, 2 * 0x01010101));

    const char *dot = "rt_graph.dot";
    CHECK(cudaGraphDebugDotPrint(g2, dot, 0));
    FILE *f = fopen(dot, "r");
    int ch = f ? fgetc(f) : EOF;
    printf("dot file: %s\n", ch != EOF ? "written" : "missing");
    if (f)
        fclose(f);
    remove(dot);

    if (getenv("VGPU_TEST_REFUSALS")) {
        // a host side in a memcpy node: the server's driver would read guest memory at each launch
        cudaGraphNode_t cn;
        printf("memcpy node from host memory: %s\n",
               cudaGetErrorName(cudaGraphAddMemcpyNode1D(&cn, g2, NULL, 0, a, h, bytes,
                                                         cudaMemcpyHostToDevice)));
        cudaGetLastError();
    }

    // the same graph through the generic node calls (cudaGraphAddNode, cudaGraphExecNodeSetParams)
    {
        cudaGraph_t g5;
        cudaGraphExec_t e5;
        cudaGraphNode_t gms, gkn;
        cudaGraphNodeParams np = {};

        CHECK(cudaGraphCreate(&g5, 0));
        np.type = cudaGraphNodeTypeMemset;
        np.memset.dst = a;
        np.memset.value = 0;
        np.memset.elementSize = 4;
        np.memset.width = N;
        np.memset.height = 1;
        CHECK(cudaGraphAddNode(&gms, g5, NULL, NULL, 0, &np));
        cudaGraphNodeParams kn2 = {};
        void *gargs[] = { &c, &a, &b, &count };
        kn2.type = cudaGraphNodeTypeKernel;
        kn2.kernel.func = (void *)fake_add;
        kn2.kernel.gridDim = dim3(blocks);
        kn2.kernel.blockDim = dim3(256);
        kn2.kernel.kernelParams = gargs;
        CHECK(cudaGraphAddNode(&gkn, g5, &gms, NULL, 1, &kn2));
        CHECK(cudaGraphInstantiate(&e5, g5, 0));
        CHECK(cudaGraphLaunch(e5, s));
        CHECK(cudaStreamSynchronize(s));
        CHECK(cudaMemcpy(h, c, bytes, cudaMemcpyDeviceToHost));
        printf("generic nodes, memset then add: c[0] = %d, %d wrong\n", h[0], wrong(h, 0x01010101));
        void *gargs2[] = { &c, &b, &b, &count };
        kn2.kernel.kernelParams = gargs2;
        CHECK(cudaGraphExecNodeSetParams(e5, gkn, &kn2));
        CHECK(cudaGraphLaunch(e5, s));
        CHECK(cudaStreamSynchronize(s));
        CHECK(cudaMemcpy(h, c, bytes, cudaMemcpyDeviceToHost));
        printf("after cudaGraphExecNodeSetParams: c[0] = %d, %d wrong\n", h[0], wrong(h, 2 * 0x01010101));
        CHECK(cudaGraphExecDestroy(e5));
        CHECK(cudaGraphDestroy(g5));
    }

    // 3. launch attributes: a kernel node's priority, copied to another; a stream's sync policy
    int least = 0, greatest = 0;
    CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    cudaKernelNodeAttrValue av = {}, ab = {};
    av.priority = greatest;
    CHECK(cudaGraphKernelNodeSetAttribute(kn, cudaLaunchAttributePriority, &av));
    CHECK(cudaGraphKernelNodeGetAttribute(kn, cudaLaunchAttributePriority, &ab));
    printf("kernel node priority reads back: %s\n", ab.priority == greatest ? "as set" : "changed");
    {
        cudaGraphNode_t nodes[8], other = NULL;
        size_t k = 8;

        CHECK(cudaGraphGetNodes(g, nodes, &k));
        for (size_t i = 0; i < k && !other; i++) {
            cudaGraphNodeType nt;

            CHECK(cudaGraphNodeGetType(nodes[i], &nt));
            if (nt == cudaGraphNodeTypeKernel)
                other = nodes[i];
        }
        CHECK(cudaGraphKernelNodeCopyAttributes(other, kn));
        ab.priority = greatest + 12345;
        CHECK(cudaGraphKernelNodeGetAttribute(other, cudaLaunchAttributePriority, &ab));
        printf("copied to a captured kernel node: %s\n", ab.priority == greatest ? "as set" : "changed");
    }
    cudaStreamAttrValue sv = {}, sb = {};
    sv.syncPolicy = cudaSyncPolicySpin;
    CHECK(cudaStreamSetAttribute(s, cudaStreamAttributeSynchronizationPolicy, &sv));
    CHECK(cudaStreamGetAttribute(s, cudaStreamAttributeSynchronizationPolicy, &sb));
    printf("stream sync policy reads back: %s\n", sb.syncPolicy == cudaSyncPolicySpin ? "spin" : "other");
    {
        // the captured device copy's node of part 1 read back
        cudaGraphNode_t nodes[8];
        size_t k = 8;
        int copies = 0;

        CHECK(cudaGraphGetNodes(g, nodes, &k));
        for (size_t i = 0; i < k; i++) {
            cudaGraphNodeType nt;
            cudaMemcpy3DParms mp3 = {};

            CHECK(cudaGraphNodeGetType(nodes[i], &nt));
            if (nt != cudaGraphNodeTypeMemcpy)
                continue;
            CHECK(cudaGraphMemcpyNodeGetParams(nodes[i], &mp3));
            printf("captured memcpy node: %zu bytes from c to d: %s\n", mp3.extent.width,
                   mp3.srcPtr.ptr == c && mp3.dstPtr.ptr == d ? "yes" : "no");
            copies++;
        }
        printf("memcpy nodes: %d\n", copies);
    }
    if (getenv("VGPU_TEST_REFUSALS")) {
        // an access policy window over memory that is not the program's device memory
        cudaStreamAttrValue bad = {};
        bad.accessPolicyWindow.base_ptr = h;
        bad.accessPolicyWindow.num_bytes = bytes;
        bad.accessPolicyWindow.hitRatio = 1.0f;
        bad.accessPolicyWindow.hitProp = cudaAccessPropertyPersisting;
        bad.accessPolicyWindow.missProp = cudaAccessPropertyStreaming;
        printf("access policy window on host memory: %s\n",
               cudaGetErrorName(cudaStreamSetAttribute(s, cudaStreamAttributeAccessPolicyWindow, &bad)));
        cudaGetLastError();
    }

    // a driver entry point through the runtime: vgpu's libcuda.so.1 gives it
    void *fn = NULL;
    cudaDriverEntryPointQueryResult q;
    CHECK(cudaGetDriverEntryPointByVersion("cuDriverGetVersion", &fn, 13000, cudaEnableDefault, &q));
    int ver = 0;
    int r = fn ? ((int (*)(int *))fn)(&ver) : -1;
    printf("cuDriverGetVersion by cudaGetDriverEntryPointByVersion: %s, %s\n",
           q == cudaDriverEntryPointSuccess && fn ? "found" : "missing",
           r == 0 && ver >= 13000 ? "CUDA 13 or later" : "no answer");

    // graph memory: alloc p -> memset p -> d = p -> free p, by the generic node calls
    {
        cudaGraph_t gm;
        cudaGraphExec_t em;
        cudaGraphNode_t na, nm, nc, nf;
        cudaGraphNodeParams pa = {}, pf = {};
        cudaMemAllocNodeParams back = {};
        cudaMemsetParams msp = {};
        void *freed = NULL;
        int *p2 = NULL;

        CHECK(cudaGraphCreate(&gm, 0));
        pa.type = cudaGraphNodeTypeMemAlloc;
        pa.alloc.poolProps.allocType = cudaMemAllocationTypePinned;
        pa.alloc.poolProps.location.type = cudaMemLocationTypeDevice;
        pa.alloc.poolProps.location.id = 0;
        pa.alloc.bytesize = bytes;
        CHECK(cudaGraphAddNode(&na, gm, NULL, NULL, 0, &pa));
        msp.dst = pa.alloc.dptr;
        msp.value = 3;
        msp.elementSize = 4;
        msp.width = N;
        msp.height = 1;
        CHECK(cudaGraphAddMemsetNode(&nm, gm, &na, 1, &msp));
        CHECK(cudaGraphAddMemcpyNode1D(&nc, gm, &nm, 1, d, pa.alloc.dptr, bytes,
                                       cudaMemcpyDeviceToDevice));
        pf.type = cudaGraphNodeTypeMemFree;
        pf.free.dptr = pa.alloc.dptr;
        CHECK(cudaGraphAddNode(&nf, gm, &nc, NULL, 1, &pf));
        CHECK(cudaGraphMemAllocNodeGetParams(na, &back));
        CHECK(cudaGraphMemFreeNodeGetParams(nf, &freed));
        CHECK(cudaGraphInstantiate(&em, gm, 0));
        CHECK(cudaMemset(d, 0, bytes));
        for (int i = 0; i < 3; i++)
            CHECK(cudaGraphLaunch(em, s));
        CHECK(cudaStreamSynchronize(s));
        CHECK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
        printf("allocation node: %zu bytes, the same address: %s, freed by the free node: %s; "
               "3 launches: d[0] = %d, %d wrong\n", back.bytesize,
               back.dptr == pa.alloc.dptr ? "yes" : "no", freed == pa.alloc.dptr ? "yes" : "no",
               h[0], wrong(h, 3));
        CHECK(cudaGraphExecDestroy(em));
        CHECK(cudaGraphDestroy(gm));

        // captured: cudaMallocAsync and cudaFreeAsync become the graph's own nodes
        CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
        CHECK(cudaMallocAsync(&p2, bytes, s));
        CHECK(cudaMemsetAsync(p2, 1, bytes, s));
        CHECK(cudaMemcpyAsync(d, p2, bytes, cudaMemcpyDeviceToDevice, s));
        CHECK(cudaFreeAsync(p2, s));
        CHECK(cudaStreamEndCapture(s, &gm));
        CHECK(cudaGraphInstantiate(&em, gm, 0));
        CHECK(cudaMemset(d, 0, bytes));
        for (int i = 0; i < 3; i++)
            CHECK(cudaGraphLaunch(em, s));
        CHECK(cudaStreamSynchronize(s));
        CHECK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
        printf("captured cudaMallocAsync and cudaFreeAsync, 3 launches: d[0] = %d, %d wrong\n",
               h[0], wrong(h, 0x01010101));
        CHECK(cudaGraphExecDestroy(em));
        CHECK(cudaGraphDestroy(gm));
    }

    // conditional nodes: while (counter) d += ones; then if (0) d = 7 else d = 9 into c
    {
        cudaGraph_t gc, wbody, ibody[2];
        cudaGraphExec_t ec;
        cudaGraphConditionalHandle hw, hi;
        cudaGraphNode_t nw, ni, k1, k2, m0, m1;
        cudaGraphNodeParams cw = {}, ci = {};
        cudaKernelNodeParams kp = {};
        cudaMemsetParams msp = {};
        int *ones, *counter, five = 5, three = 3, n_ = N;
        void *add_args[] = { &d, &d, &ones, &n_ };
        void *count_args[] = { &hw, &counter };

        CHECK(cudaMalloc(&ones, bytes));
        CHECK(cudaMalloc(&counter, sizeof(int)));
        fake_fill<<<blocks * 4, 256>>>(ones, 0, bytes);
        fake_fill<<<1, 1>>>(ones, 1, 1);   // the first int is 1, the rest 0
        CHECK(cudaGraphCreate(&gc, 0));
        CHECK(cudaGraphConditionalHandleCreate(&hw, gc, 1, cudaGraphCondAssignDefault));
        cw.type = cudaGraphNodeTypeConditional;
        cw.conditional.handle = hw;
        cw.conditional.type = cudaGraphCondTypeWhile;
        cw.conditional.size = 1;
        CHECK(cudaGraphAddNode(&nw, gc, NULL, NULL, 0, &cw));
        wbody = cw.conditional.phGraph_out[0];
        kp.func = (void *)fake_add;
        kp.gridDim = dim3(blocks);
        kp.blockDim = dim3(256);
        kp.kernelParams = add_args;
        CHECK(cudaGraphAddKernelNode(&k1, wbody, NULL, 0, &kp));
        kp.func = (void *)fake_cond_count;
        kp.gridDim = dim3(1);
        kp.blockDim = dim3(32);
        kp.kernelParams = count_args;
        CHECK(cudaGraphAddKernelNode(&k2, wbody, &k1, 1, &kp));
        CHECK(cudaGraphConditionalHandleCreate(&hi, gc, 0, cudaGraphCondAssignDefault));
        ci.type = cudaGraphNodeTypeConditional;
        ci.conditional.handle = hi;
        ci.conditional.type = cudaGraphCondTypeIf;
        ci.conditional.size = 2;
        CHECK(cudaGraphAddNode(&ni, gc, &nw, NULL, 1, &ci));
        ibody[0] = ci.conditional.phGraph_out[0];
        ibody[1] = ci.conditional.phGraph_out[1];
        msp.dst = c;
        msp.elementSize = 4;
        msp.width = N;
        msp.height = 1;
        msp.value = 7;
        CHECK(cudaGraphAddMemsetNode(&m0, ibody[0], NULL, 0, &msp));
        msp.value = 9;
        CHECK(cudaGraphAddMemsetNode(&m1, ibody[1], NULL, 0, &msp));
        CHECK(cudaGraphInstantiate(&ec, gc, 0));
        CHECK(cudaMemset(d, 0, bytes));
        CHECK(cudaMemcpy(counter, &five, sizeof(int), cudaMemcpyHostToDevice));
        CHECK(cudaGraphLaunch(ec, s));
        CHECK(cudaStreamSynchronize(s));
        CHECK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
        int first = h[0];
        CHECK(cudaMemcpy(counter, &three, sizeof(int), cudaMemcpyHostToDevice));
        CHECK(cudaGraphLaunch(ec, s));
        CHECK(cudaStreamSynchronize(s));
        CHECK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
        int second = h[0], rest = 0;
        for (int i = 1; i < N; i++)
            rest += h[i];
        CHECK(cudaMemcpy(h, c, bytes, cudaMemcpyDeviceToHost));
        printf("while node: 5 rounds d[0] = %d, 3 more d[0] = %d, the rest %d; if node with "
               "else: c[0] = %d, %d wrong\n", first, second, rest, h[0], wrong(h, 9));
        CHECK(cudaGraphExecDestroy(ec));
        CHECK(cudaGraphDestroy(gc));
        CHECK(cudaFree(ones));
        CHECK(cudaFree(counter));
    }

    // the driver's log through the runtime: nothing new since the iterator was taken
    {
        cudaLogIterator it = 0;
        char text[256];
        size_t n = sizeof(text);

        CHECK(cudaLogsCurrent(&it, 0));
        CHECK(cudaLogsDumpToMemory(&it, text, &n, 0));
        printf("driver log through the runtime: %zu bytes new\n", n);
    }

    CHECK(cudaGraphExecDestroy(e));
    CHECK(cudaGraphExecDestroy(e2));
    CHECK(cudaGraphDestroy(g));
    CHECK(cudaGraphDestroy(g2));
    CHECK(cudaStreamDestroy(s));
    printf("destroyed\n");
    return 0;
}
