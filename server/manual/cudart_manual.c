/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's table of hand-written CUDA runtime calls (spec: manual):
 * which handler serves each call id.  The handlers are in this directory,
 * one concern a file (register.c, launch.c, memory.c, copy.c, symbol.c,
 * func.c, device.c); each checks every device range and handle against the
 * session's tables first.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manual_internal.h"

#define SYM(name) static int h_##name(struct vgpu_session *s, struct vgpu_manual_call *c) \
    { return vgpu_manual_symbol(s, c, VGPU_CUDART_ID_##name); }
#define FUNC(name) static int h_##name(struct vgpu_session *s, struct vgpu_manual_call *c) \
    { return vgpu_manual_func(s, c, VGPU_CUDART_ID_##name); }
SYM(cudaGetSymbolAddress)
SYM(cudaGetSymbolSize)
SYM(cudaMemcpyToSymbol)
SYM(cudaMemcpyFromSymbol)
FUNC(cudaFuncGetAttributes)
FUNC(cudaFuncSetAttribute)
FUNC(cudaFuncSetCacheConfig)
FUNC(cudaFuncSetSharedMemConfig)
FUNC(cudaFuncGetName)
FUNC(cudaOccupancyMaxActiveBlocksPerMultiprocessor)
FUNC(cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags)
FUNC(cudaOccupancyAvailableDynamicSMemPerBlock)

static const struct {
    uint32_t id;
    vgpu_manual_fn fn;
} handlers[] = {
    { VGPU_CUDART_ID___cudaRegisterFatBinary, vgpu_manual_fatbin },
    { VGPU_CUDART_ID___cudaRegisterFunction, vgpu_manual_register },
    { VGPU_CUDART_ID___cudaRegisterVar, vgpu_manual_register },
    { VGPU_CUDART_ID___cudaRegisterManagedVar, vgpu_manual_register },
    { VGPU_CUDART_ID___cudaInitModule, vgpu_manual_init_module },
    { VGPU_CUDART_ID_cudaGetFuncBySymbol, vgpu_manual_func_by_symbol },
    /* arrays, textures, surfaces (array.c); the copy forms' arguments say direction and side */
    { VGPU_CUDART_ID_cudaMallocArray, vgpu_manual_malloc_array },
    { VGPU_CUDART_ID_cudaMalloc3DArray, vgpu_manual_malloc_3d_array },
    { VGPU_CUDART_ID_cudaMallocMipmappedArray, vgpu_manual_malloc_mipmapped },
    { VGPU_CUDART_ID_cudaGetMipmappedArrayLevel, vgpu_manual_mipmapped_level },
    { VGPU_CUDART_ID_cudaFreeMipmappedArray, vgpu_manual_free_mipmapped },
    { VGPU_CUDART_ID_cudaFreeArray, vgpu_manual_free_array },
    { VGPU_CUDART_ID_cudaMemcpy2DToArray, vgpu_manual_array_copy },
    { VGPU_CUDART_ID_cudaMemcpy2DFromArray, vgpu_manual_array_copy },
    { VGPU_CUDART_ID_cudaMemcpyToArray, vgpu_manual_array_copy },
    { VGPU_CUDART_ID_cudaMemcpyFromArray, vgpu_manual_array_copy },
    /* between two arrays: the 1D, 2D and 3D forms (cudaMemcpy3D(Async) with arrays on both sides) */
    { VGPU_CUDART_ID_cudaMemcpyArrayToArray, vgpu_manual_array_to_array },
    { VGPU_CUDART_ID_cudaMemcpy2DArrayToArray, vgpu_manual_array_to_array },
    { VGPU_CUDART_ID_cudaMemcpy3D, vgpu_manual_array_to_array },
    { VGPU_CUDART_ID_cudaCreateTextureObject, vgpu_manual_texture },
    { VGPU_CUDART_ID_cudaCreateSurfaceObject, vgpu_manual_texture },
    { VGPU_CUDART_ID___cudaRegisterFatBinaryEnd, vgpu_manual_fatbin_end },
    { VGPU_CUDART_ID_cudaFuncGetParamInfo, vgpu_manual_param_info },
    { VGPU_CUDART_ID___cudaLaunchKernel, vgpu_manual_launch },
    { VGPU_CUDART_ID_cudaMalloc, vgpu_manual_malloc },
    { VGPU_CUDART_ID_cudaFree, vgpu_manual_free },
    { VGPU_CUDART_ID_cudaMemcpy, vgpu_manual_copy },
    { VGPU_CUDART_ID_cudaGetSymbolAddress, h_cudaGetSymbolAddress },
    { VGPU_CUDART_ID_cudaGetSymbolSize, h_cudaGetSymbolSize },
    { VGPU_CUDART_ID_cudaMemcpyToSymbol, h_cudaMemcpyToSymbol },
    { VGPU_CUDART_ID_cudaMemcpyFromSymbol, h_cudaMemcpyFromSymbol },
    { VGPU_CUDART_ID_cudaFuncGetAttributes, h_cudaFuncGetAttributes },
    { VGPU_CUDART_ID_cudaFuncSetAttribute, h_cudaFuncSetAttribute },
    { VGPU_CUDART_ID_cudaFuncSetCacheConfig, h_cudaFuncSetCacheConfig },
    { VGPU_CUDART_ID_cudaFuncSetSharedMemConfig, h_cudaFuncSetSharedMemConfig },
    { VGPU_CUDART_ID_cudaFuncGetName, h_cudaFuncGetName },
    { VGPU_CUDART_ID_cudaOccupancyMaxActiveBlocksPerMultiprocessor,
      h_cudaOccupancyMaxActiveBlocksPerMultiprocessor },
    { VGPU_CUDART_ID_cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags,
      h_cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags },
    { VGPU_CUDART_ID_cudaOccupancyAvailableDynamicSMemPerBlock,
      h_cudaOccupancyAvailableDynamicSMemPerBlock },
    { VGPU_CUDART_ID_cudaSetDevice, vgpu_manual_set_device },
    { VGPU_CUDART_ID_cudaDeviceReset, vgpu_manual_device_reset },
    { VGPU_CUDART_ID_cudaPointerGetAttributes, vgpu_manual_pointer },
};

vgpu_manual_fn vgpu_manual_find(uint32_t id)
{
    /* by id, filled at the first look (a session is one thread) */
    static vgpu_manual_fn by_id[VGPU_CUDART_MAX_ID + 1];
    static bool filled;

    if (!filled) {
        for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
            if (handlers[i].id <= VGPU_CUDART_MAX_ID)
                by_id[handlers[i].id] = handlers[i].fn;
        filled = true;
    }
    return id <= VGPU_CUDART_MAX_ID ? by_id[id] : NULL;
}
