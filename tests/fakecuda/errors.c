/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error names and texts, and each thread's last error.  Every cudaError_t
 * of CUDA 13.0 has its own name (the enumerator's), so programs print the
 * same names against the fake as against the real runtime; texts are the
 * real runtime's for the codes the fake returns and the name otherwise.
 * Any other int is "unrecognized error code", as in the real runtime:
 * neither function returns NULL.
 *
 * The driver side (driver*.c) reuses the runtime's helpers, which answer in
 * cudaError_t; vgpu_fake_cu_of below is the one table from those answers to
 * CUresult, and while a driver call runs (vgpu_fake_quiet_begin/end) the
 * helpers leave the runtime's last error alone, as the real driver does.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fakecuda_internal.h"

#define FAKE_ERRORS(E)                                                                            \
    E(cudaSuccess) E(cudaErrorInvalidValue) E(cudaErrorMemoryAllocation)                          \
    E(cudaErrorInitializationError) E(cudaErrorCudartUnloading) E(cudaErrorProfilerDisabled)      \
    E(cudaErrorProfilerNotInitialized) E(cudaErrorProfilerAlreadyStarted)                         \
    E(cudaErrorProfilerAlreadyStopped) E(cudaErrorInvalidConfiguration)                           \
    E(cudaErrorInvalidPitchValue) E(cudaErrorInvalidSymbol) E(cudaErrorInvalidHostPointer)        \
    E(cudaErrorInvalidDevicePointer) E(cudaErrorInvalidTexture) E(cudaErrorInvalidTextureBinding) \
    E(cudaErrorInvalidChannelDescriptor) E(cudaErrorInvalidMemcpyDirection)                       \
    E(cudaErrorAddressOfConstant) E(cudaErrorTextureFetchFailed) E(cudaErrorTextureNotBound)      \
    E(cudaErrorSynchronizationError) E(cudaErrorInvalidFilterSetting)                             \
    E(cudaErrorInvalidNormSetting) E(cudaErrorMixedDeviceExecution)                               \
    E(cudaErrorNotYetImplemented) E(cudaErrorMemoryValueTooLarge) E(cudaErrorStubLibrary)         \
    E(cudaErrorInsufficientDriver) E(cudaErrorCallRequiresNewerDriver)                            \
    E(cudaErrorInvalidSurface) E(cudaErrorDuplicateVariableName)                                  \
    E(cudaErrorDuplicateTextureName) E(cudaErrorDuplicateSurfaceName)                             \
    E(cudaErrorDevicesUnavailable) E(cudaErrorIncompatibleDriverContext)                          \
    E(cudaErrorMissingConfiguration) E(cudaErrorPriorLaunchFailure)                               \
    E(cudaErrorLaunchMaxDepthExceeded) E(cudaErrorLaunchFileScopedTex)                            \
    E(cudaErrorLaunchFileScopedSurf) E(cudaErrorSyncDepthExceeded)                                \
    E(cudaErrorLaunchPendingCountExceeded) E(cudaErrorInvalidDeviceFunction)                      \
    E(cudaErrorNoDevice) E(cudaErrorInvalidDevice) E(cudaErrorDeviceNotLicensed)                  \
    E(cudaErrorSoftwareValidityNotEstablished) E(cudaErrorStartupFailure)                         \
    E(cudaErrorInvalidKernelImage) E(cudaErrorDeviceUninitialized)                                \
    E(cudaErrorMapBufferObjectFailed) E(cudaErrorUnmapBufferObjectFailed)                         \
    E(cudaErrorArrayIsMapped) E(cudaErrorAlreadyMapped) E(cudaErrorNoKernelImageForDevice)        \
    E(cudaErrorAlreadyAcquired) E(cudaErrorNotMapped) E(cudaErrorNotMappedAsArray)                \
    E(cudaErrorNotMappedAsPointer) E(cudaErrorECCUncorrectable) E(cudaErrorUnsupportedLimit)      \
    E(cudaErrorDeviceAlreadyInUse) E(cudaErrorPeerAccessUnsupported) E(cudaErrorInvalidPtx)       \
    E(cudaErrorInvalidGraphicsContext) E(cudaErrorNvlinkUncorrectable)                            \
    E(cudaErrorJitCompilerNotFound) E(cudaErrorUnsupportedPtxVersion)                             \
    E(cudaErrorJitCompilationDisabled) E(cudaErrorUnsupportedExecAffinity)                        \
    E(cudaErrorUnsupportedDevSideSync) E(cudaErrorContained) E(cudaErrorInvalidSource)            \
    E(cudaErrorFileNotFound) E(cudaErrorSharedObjectSymbolNotFound)                               \
    E(cudaErrorSharedObjectInitFailed) E(cudaErrorOperatingSystem)                                \
    E(cudaErrorInvalidResourceHandle) E(cudaErrorIllegalState) E(cudaErrorLossyQuery)             \
    E(cudaErrorSymbolNotFound) E(cudaErrorNotReady) E(cudaErrorIllegalAddress)                    \
    E(cudaErrorLaunchOutOfResources) E(cudaErrorLaunchTimeout)                                    \
    E(cudaErrorLaunchIncompatibleTexturing) E(cudaErrorPeerAccessAlreadyEnabled)                  \
    E(cudaErrorPeerAccessNotEnabled) E(cudaErrorSetOnActiveProcess)                               \
    E(cudaErrorContextIsDestroyed) E(cudaErrorAssert) E(cudaErrorTooManyPeers)                    \
    E(cudaErrorHostMemoryAlreadyRegistered) E(cudaErrorHostMemoryNotRegistered)                   \
    E(cudaErrorHardwareStackError) E(cudaErrorIllegalInstruction)                                 \
    E(cudaErrorMisalignedAddress) E(cudaErrorInvalidAddressSpace) E(cudaErrorInvalidPc)           \
    E(cudaErrorLaunchFailure) E(cudaErrorCooperativeLaunchTooLarge)                               \
    E(cudaErrorTensorMemoryLeak) E(cudaErrorNotPermitted) E(cudaErrorNotSupported)                \
    E(cudaErrorSystemNotReady) E(cudaErrorSystemDriverMismatch)                                   \
    E(cudaErrorCompatNotSupportedOnDevice) E(cudaErrorMpsConnectionFailed)                        \
    E(cudaErrorMpsRpcFailure) E(cudaErrorMpsServerNotReady) E(cudaErrorMpsMaxClientsReached)      \
    E(cudaErrorMpsMaxConnectionsReached) E(cudaErrorMpsClientTerminated)                          \
    E(cudaErrorCdpNotSupported) E(cudaErrorCdpVersionMismatch)                                    \
    E(cudaErrorStreamCaptureUnsupported) E(cudaErrorStreamCaptureInvalidated)                     \
    E(cudaErrorStreamCaptureMerge) E(cudaErrorStreamCaptureUnmatched)                             \
    E(cudaErrorStreamCaptureUnjoined) E(cudaErrorStreamCaptureIsolation)                          \
    E(cudaErrorStreamCaptureImplicit) E(cudaErrorCapturedEvent)                                   \
    E(cudaErrorStreamCaptureWrongThread) E(cudaErrorTimeout) E(cudaErrorGraphExecUpdateFailure)   \
    E(cudaErrorExternalDevice) E(cudaErrorInvalidClusterSize) E(cudaErrorFunctionNotLoaded)       \
    E(cudaErrorInvalidResourceType) E(cudaErrorInvalidResourceConfiguration) E(cudaErrorUnknown)

#define UNRECOGNIZED "unrecognized error code"

static __thread cudaError_t last_error;
static __thread int quiet;              /* > 0 while a driver call runs a helper */

cudaError_t vgpu_fake_status(cudaError_t st)
{
    if (st != cudaSuccess && !quiet)
        last_error = st;
    return st;
}

/*
 * The fake's own diagnostics go to the server's log: a session's stderr
 * carries what kernels print to the program (server/devout.c), and says
 * where the log went in VGPU_SERVER_LOG_FD.
 */
static int diag_fd(void)
{
    const char *v = getenv("VGPU_SERVER_LOG_FD");
    int fd = v ? atoi(v) : 2;

    return fd > 2 ? fd : 2;
}

void vgpu_fake_diag(const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (write(diag_fd(), line, strlen(line)) < 0)
        return;
}

/*
 * The driver's log (cuLogsCurrent, cuLogsDumpToMemory, cuLogsDumpToFile):
 * a line per refusal, the newest 64 kept; an iterator counts lines.
 */
#define LOG_LINES 64
static char log_line[LOG_LINES][160];
static unsigned log_count;

/* Log callbacks (cuLogsRegisterCallback): each gets each line, on the thread that logged it. */
#define LOG_CBS 8
static struct {
    CUlogsCallback fn;
    void *data;
} log_cb[LOG_CBS];

static void log_add(const char *fn, const char *why)
{
    char *line = log_line[log_count % LOG_LINES];

    snprintf(line, sizeof(log_line[0]), "[fakecuda] %.40s: %.100s", fn, why);
    log_count++;
    for (int i = 0; i < LOG_CBS; i++)
        if (log_cb[i].fn)
            log_cb[i].fn(log_cb[i].data, CU_LOG_LEVEL_ERROR, line, strlen(line));
}

FAKE_EXPORT CUresult cuLogsRegisterCallback(CUlogsCallback callbackFunc, void *userData,
                                            CUlogsCallbackHandle *callback_out)
{
    if (!callbackFunc)
        return CUDA_ERROR_INVALID_VALUE;
    for (int i = 0; i < LOG_CBS; i++)
        if (!log_cb[i].fn) {
            log_cb[i].fn = callbackFunc;
            log_cb[i].data = userData;
            if (callback_out)
                *callback_out = (CUlogsCallbackHandle)(uintptr_t)(i + 1);
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_OUT_OF_MEMORY;
}

FAKE_EXPORT CUresult cuLogsUnregisterCallback(CUlogsCallbackHandle callback)
{
    uintptr_t i = (uintptr_t)callback;

    if (i < 1 || i > LOG_CBS || !log_cb[i - 1].fn)
        return CUDA_ERROR_INVALID_VALUE;
    log_cb[i - 1].fn = NULL;
    return CUDA_SUCCESS;
}

void vgpu_fake_log(const char *fn, const char *why)
{
    log_add(fn, why);
}

FAKE_EXPORT CUresult cuLogsCurrent(CUlogIterator *iterator_out, unsigned int flags)
{
    if (!iterator_out || flags)
        return CUDA_ERROR_INVALID_VALUE;
    *iterator_out = log_count;
    return CUDA_SUCCESS;
}

/* Lines from *iterator (all kept ones when NULL) into buffer, as the driver does. */
FAKE_EXPORT CUresult cuLogsDumpToMemory(CUlogIterator *iterator, char *buffer, size_t *size,
                                        unsigned int flags)
{
    unsigned from = iterator ? *iterator : 0, first = log_count > LOG_LINES
                                                          ? log_count - LOG_LINES : 0;
    size_t used = 0;

    if (!buffer || !size || flags)
        return CUDA_ERROR_INVALID_VALUE;
    if (from < first || from > log_count)
        from = first;
    for (unsigned i = from; i < log_count; i++) {
        size_t n = strlen(log_line[i % LOG_LINES]);

        if (used + n + 2 > *size) {
            if (!used) {
                *size = 0;
                return CUDA_ERROR_INVALID_VALUE;
            }
            break;
        }
        memcpy(buffer + used, log_line[i % LOG_LINES], n);
        used += n;
        buffer[used++] = '\n';
    }
    if (*size)
        buffer[used] = '\0';
    *size = used;
    if (iterator)
        *iterator = log_count;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuLogsDumpToFile(CUlogIterator *iterator, const char *pathToFile,
                                      unsigned int flags)
{
    static char text[LOG_LINES * 162];
    size_t n = sizeof(text);
    FILE *f;
    CUresult r;

    if (!pathToFile)
        return CUDA_ERROR_INVALID_VALUE;
    if ((r = cuLogsDumpToMemory(iterator, text, &n, flags)))
        return r;
    if (!(f = fopen(pathToFile, "w")))
        return CUDA_ERROR_INVALID_VALUE;
    fwrite(text, 1, n, f);
    return fclose(f) ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

static void refuse_log(const char *fn, const char *fmt, va_list ap)
{
    char why[768];

    vsnprintf(why, sizeof(why), fmt, ap);
    vgpu_fake_diag("fakecuda: refused %s: %s\n", fn, why);
    log_add(fn, why);
    /* A test that must prove the server's own checks makes this fatal. */
    if (getenv("VGPU_FAKE_ABORT_ON_REFUSE"))
        abort();
}

cudaError_t vgpu_fake_refuse(cudaError_t st, const char *fn, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    refuse_log(fn, fmt, ap);
    va_end(ap);
    return vgpu_fake_status(st);
}

CUresult vgpu_fake_cu_refuse(CUresult r, const char *fn, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    refuse_log(fn, fmt, ap);
    va_end(ap);
    return r;
}

bool vgpu_fake_in_driver(void)
{
    return quiet > 0;
}

void vgpu_fake_quiet_begin(void)
{
    quiet++;
}

CUresult vgpu_fake_quiet_end(cudaError_t st)
{
    quiet--;
    return vgpu_fake_cu_of(st);
}

/*
 * The runtime statuses the shared helpers give, as the driver gives them:
 *
 *   cudaSuccess                      CUDA_SUCCESS
 *   cudaErrorInvalidValue            CUDA_ERROR_INVALID_VALUE
 *   cudaErrorInvalidPitchValue       CUDA_ERROR_INVALID_VALUE
 *   cudaErrorInvalidMemcpyDirection  CUDA_ERROR_INVALID_VALUE
 *   cudaErrorInvalidConfiguration    CUDA_ERROR_INVALID_VALUE
 *   cudaErrorMemoryAllocation        CUDA_ERROR_OUT_OF_MEMORY
 *   cudaErrorInvalidResourceHandle   CUDA_ERROR_INVALID_HANDLE
 *   cudaErrorInvalidDeviceFunction   CUDA_ERROR_INVALID_HANDLE
 *   cudaErrorInvalidSymbol           CUDA_ERROR_NOT_FOUND
 *   cudaErrorIllegalAddress          CUDA_ERROR_ILLEGAL_ADDRESS
 *   cudaErrorNotReady                CUDA_ERROR_NOT_READY
 *   cudaErrorInvalidDevice           CUDA_ERROR_INVALID_DEVICE
 *   cudaErrorNotSupported            CUDA_ERROR_NOT_SUPPORTED
 *   anything else                    CUDA_ERROR_UNKNOWN
 */
CUresult vgpu_fake_cu_of(cudaError_t st)
{
    switch (st) {
    case cudaSuccess: return CUDA_SUCCESS;
    case cudaErrorInvalidValue:
    case cudaErrorInvalidPitchValue:
    case cudaErrorInvalidMemcpyDirection:
    case cudaErrorInvalidConfiguration: return CUDA_ERROR_INVALID_VALUE;
    case cudaErrorMemoryAllocation: return CUDA_ERROR_OUT_OF_MEMORY;
    case cudaErrorInvalidResourceHandle:
    case cudaErrorInvalidDeviceFunction: return CUDA_ERROR_INVALID_HANDLE;
    case cudaErrorInvalidSymbol: return CUDA_ERROR_NOT_FOUND;
    case cudaErrorIllegalAddress: return CUDA_ERROR_ILLEGAL_ADDRESS;
    case cudaErrorNotReady: return CUDA_ERROR_NOT_READY;
    case cudaErrorInvalidDevice: return CUDA_ERROR_INVALID_DEVICE;
    case cudaErrorNotSupported: return CUDA_ERROR_NOT_SUPPORTED;
    case cudaErrorStreamCaptureUnsupported: return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    case cudaErrorStreamCaptureInvalidated: return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    default: return CUDA_ERROR_UNKNOWN;
    }
}

static const char *name_of(int code)
{
    switch (code) {
#define NAME(e) case e: return #e;
    FAKE_ERRORS(NAME)
#undef NAME
    default:
        return UNRECOGNIZED;
    }
}

FAKE_EXPORT const char *cudaGetErrorName(cudaError_t error)
{
    return name_of((int)error);
}

FAKE_EXPORT const char *cudaGetErrorString(cudaError_t error)
{
    switch ((int)error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidPitchValue: return "invalid pitch argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
    default: return name_of((int)error);       /* or "unrecognized error code" */
    }
}

FAKE_EXPORT cudaError_t cudaGetLastError(void)
{
    cudaError_t st = last_error;

    last_error = cudaSuccess;
    return st;
}

FAKE_EXPORT cudaError_t cudaPeekAtLastError(void)
{
    return last_error;
}
