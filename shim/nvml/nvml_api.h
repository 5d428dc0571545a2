/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The subset of NVML (libnvidia-ml.so.1) that vgpu remotes, declared by hand:
 * no nvml.h is packaged on the build hosts or in Debian main.  Every type,
 * value and signature below is taken from NVIDIA's public NVML API
 * Reference (https://docs.nvidia.com/deploy/nvml-api/), written in our own
 * words; the struct layouts are the ones documented there (nvmlPciInfo_t,
 * nvmlMemory_t, nvmlMemory_v2_t, nvmlUtilization_t, nvmlBAR1Memory_t,
 * nvmlProcessInfo_v1_t and _v2_t) and must stay byte-exact, because the
 * server hands them to the real library.
 *
 * Read by vgpu-codegen (codegen/spec/nvml.spec), by the guest library
 * (shim/nvml/), by the server's handlers (server/manual/nvml.c) and by the
 * fake NVML of the tests (tests/fakecuda/nvml.c).
 *
 * Unlike NVIDIA's header, no macro renames a name to its newest version
 * (nvmlInit to nvmlInit_v2, ...): the library exports every version, and so
 * every one is declared under its own name.
 *
 * The last section names every other function NVIDIA's library exports
 * (the list in codegen/spec/nvml.ids), without parameters: vgpu answers
 * them NVML_ERROR_NOT_SUPPORTED, or NVML_ERROR_NO_PERMISSION for those that
 * change the GPU, and never reads their arguments (on the ABIs vgpu
 * supports a caller may pass any arguments to such a function).
 */
#ifndef VGPU_NVML_API_H
#define VGPU_NVML_API_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nvmlReturn_enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_ALREADY_INITIALIZED = 5,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_INSUFFICIENT_POWER = 8,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_IRQ_ISSUE = 11,
    NVML_ERROR_LIBRARY_NOT_FOUND = 12,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_CORRUPTED_INFOROM = 14,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_RESET_REQUIRED = 16,
    NVML_ERROR_OPERATING_SYSTEM = 17,
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
    NVML_ERROR_IN_USE = 19,
    NVML_ERROR_MEMORY = 20,
    NVML_ERROR_NO_DATA = 21,
    NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22,
    NVML_ERROR_INSUFFICIENT_RESOURCES = 23,
    NVML_ERROR_FREQ_NOT_SUPPORTED = 24,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_DEPRECATED = 26,
    NVML_ERROR_NOT_READY = 27,
    NVML_ERROR_GPU_NOT_FOUND = 28,
    NVML_ERROR_INVALID_STATE = 29,
    NVML_ERROR_UNKNOWN = 999
} nvmlReturn_t;

/* An opaque device: in the guest, a value the server gave and checks. */
typedef struct nvmlDevice_st *nvmlDevice_t;

/* nvmlInitWithFlags */
#define NVML_INIT_FLAG_NO_GPUS 1u
#define NVML_INIT_FLAG_NO_ATTACH 2u

/* Buffer sizes the documentation guarantees to be enough. */
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80
#define NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE 80
#define NVML_DEVICE_NAME_BUFFER_SIZE 64
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_DEVICE_UUID_BUFFER_SIZE 80
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_DEVICE_SERIAL_BUFFER_SIZE 30
#define NVML_DEVICE_VBIOS_VERSION_BUFFER_SIZE 32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE 32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE 16

typedef struct nvmlPciInfo_st {
    char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;       /* device id << 16 | vendor id */
    unsigned int pciSubSystemId;
    char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;

typedef struct nvmlMemory_st {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct nvmlMemory_v2_st {
    unsigned int version;           /* nvmlMemory_v2, set by the caller */
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

/* A versioned struct's version word: its size, and the version in the top byte. */
#define nvmlMemory_v2 ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24)))

typedef struct nvmlUtilization_st {
    unsigned int gpu;               /* percent of the sample period a kernel ran */
    unsigned int memory;            /* percent of it device memory was read or written */
} nvmlUtilization_t;

typedef struct nvmlBAR1Memory_st {
    unsigned long long bar1Total;
    unsigned long long bar1Free;
    unsigned long long bar1Used;
} nvmlBAR1Memory_t;

typedef struct nvmlProcessInfo_v1_st {
    unsigned int pid;
    unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

typedef struct nvmlProcessInfo_v2_st {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;     /* 0xFFFFFFFF without MIG */
    unsigned int computeInstanceId;
} nvmlProcessInfo_v2_t, nvmlProcessInfo_t;

/* usedGpuMemory when the driver cannot tell. */
#define NVML_VALUE_NOT_AVAILABLE (-1)

typedef enum nvmlEnableState_enum { NVML_FEATURE_DISABLED = 0, NVML_FEATURE_ENABLED = 1 } nvmlEnableState_t;

typedef enum nvmlTemperatureSensors_enum { NVML_TEMPERATURE_GPU = 0, NVML_TEMPERATURE_COUNT } nvmlTemperatureSensors_t;

typedef enum nvmlClockType_enum {
    NVML_CLOCK_GRAPHICS = 0,
    NVML_CLOCK_SM = 1,
    NVML_CLOCK_MEM = 2,
    NVML_CLOCK_VIDEO = 3,
    NVML_CLOCK_COUNT
} nvmlClockType_t;

typedef enum nvmlPStates_enum {
    NVML_PSTATE_0 = 0,
    NVML_PSTATE_15 = 15,
    NVML_PSTATE_UNKNOWN = 32
} nvmlPstates_t;

typedef enum nvmlComputeMode_enum {
    NVML_COMPUTEMODE_DEFAULT = 0,
    NVML_COMPUTEMODE_EXCLUSIVE_THREAD = 1,
    NVML_COMPUTEMODE_PROHIBITED = 2,
    NVML_COMPUTEMODE_EXCLUSIVE_PROCESS = 3,
    NVML_COMPUTEMODE_COUNT
} nvmlComputeMode_t;

typedef enum nvmlTemperatureThresholds_enum {
    NVML_TEMPERATURE_THRESHOLD_SHUTDOWN = 0,
    NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1,
    NVML_TEMPERATURE_THRESHOLD_MEM_MAX = 2,
    NVML_TEMPERATURE_THRESHOLD_GPU_MAX = 3
} nvmlTemperatureThresholds_t;

typedef enum nvmlMemoryErrorType_enum {
    NVML_MEMORY_ERROR_TYPE_CORRECTED = 0,
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
} nvmlMemoryErrorType_t;

typedef enum nvmlEccCounterType_enum {
    NVML_VOLATILE_ECC = 0,
    NVML_AGGREGATE_ECC = 1
} nvmlEccCounterType_t;

/* NVML_DEVICE_ARCH_*: 2 Kepler ... 9 Hopper, 10 Blackwell */
typedef unsigned int nvmlDeviceArchitecture_t;

typedef enum nvmlBrandType_enum {
    NVML_BRAND_UNKNOWN = 0,
    NVML_BRAND_TESLA = 2,
    NVML_BRAND_NVIDIA = 14
} nvmlBrandType_t;

/* ---- Initialisation, errors, the system ---- */
nvmlReturn_t nvmlInit(void);
nvmlReturn_t nvmlInit_v2(void);
nvmlReturn_t nvmlInitWithFlags(unsigned int flags);
nvmlReturn_t nvmlShutdown(void);
const char *nvmlErrorString(nvmlReturn_t result);
nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length);
nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length);
nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion);
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion);
nvmlReturn_t nvmlSystemGetProcessName(unsigned int pid, char *name, unsigned int length);

/* ---- Finding devices ---- */
nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount);
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount);
nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char *pciBusId, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pciBusId, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index);

/* ---- Identity ---- */
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length);
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length);
nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t device, char *serial, unsigned int length);
nvmlReturn_t nvmlDeviceGetVbiosVersion(nvmlDevice_t device, char *version, unsigned int length);
nvmlReturn_t nvmlDeviceGetBrand(nvmlDevice_t device, nvmlBrandType_t *type);
nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minorNumber);
nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfo_t *pci);
nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci);
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci);
nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor);
nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device, nvmlDeviceArchitecture_t *arch);
nvmlReturn_t nvmlDeviceGetMemoryBusWidth(nvmlDevice_t device, unsigned int *busWidth);
nvmlReturn_t nvmlDeviceGetNumGpuCores(nvmlDevice_t device, unsigned int *numCores);
nvmlReturn_t nvmlDeviceGetBoardPartNumber(nvmlDevice_t device, char *partNumber, unsigned int length);
nvmlReturn_t nvmlDeviceGetInforomImageVersion(nvmlDevice_t device, char *version, unsigned int length);
nvmlReturn_t nvmlDeviceGetMultiGpuBoard(nvmlDevice_t device, unsigned int *multiGpuBool);
nvmlReturn_t nvmlDeviceGetBoardId(nvmlDevice_t device, unsigned int *boardId);

/* ---- Memory and processes (this tenant's share) ---- */
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory);
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory);
nvmlReturn_t nvmlDeviceGetBAR1MemoryInfo(nvmlDevice_t device, nvmlBAR1Memory_t *bar1Memory);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int *infoCount,
                                                  nvmlProcessInfo_v1_t *infos);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount,
                                                     nvmlProcessInfo_v2_t *infos);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                     nvmlProcessInfo_t *infos);

/* ---- Sensors and state of the whole device ---- */
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization);
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensorType,
                                      unsigned int *temp);
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power);
nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device, unsigned int *limit);
nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock);
nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock);
nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t device, unsigned int *speed);
nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t device, nvmlPstates_t *pState);
nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t device, nvmlComputeMode_t *mode);
nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, nvmlEnableState_t *mode);
nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t device, nvmlEnableState_t *current,
                                  nvmlEnableState_t *pending);
nvmlReturn_t nvmlDeviceGetDisplayMode(nvmlDevice_t device, nvmlEnableState_t *display);
nvmlReturn_t nvmlDeviceGetDisplayActive(nvmlDevice_t device, nvmlEnableState_t *isActive);
nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t device, unsigned int *currLinkGen);
nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t device, unsigned int *currLinkWidth);
nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t device, unsigned int *maxLinkGen);
nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t device, unsigned int *maxLinkWidth);
nvmlReturn_t nvmlDeviceGetPcieLinkMaxSpeed(nvmlDevice_t device, unsigned int *maxSpeed);
nvmlReturn_t nvmlDeviceGetPcieSpeed(nvmlDevice_t device, unsigned int *pcieSpeed);
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit);
nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t device, unsigned int *defaultLimit);
nvmlReturn_t nvmlDeviceGetPowerManagementMode(nvmlDevice_t device, nvmlEnableState_t *mode);
nvmlReturn_t nvmlDeviceGetPowerState(nvmlDevice_t device, nvmlPstates_t *pState);
nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy);
nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device, unsigned long long *reasons);
nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device, unsigned long long *reasons);
nvmlReturn_t nvmlDeviceGetApplicationsClock(nvmlDevice_t device, nvmlClockType_t clockType,
                                            unsigned int *clockMHz);
nvmlReturn_t nvmlDeviceGetDefaultApplicationsClock(nvmlDevice_t device, nvmlClockType_t clockType,
                                                   unsigned int *clockMHz);
nvmlReturn_t nvmlDeviceGetMaxCustomerBoostClock(nvmlDevice_t device, nvmlClockType_t clockType,
                                                unsigned int *clockMHz);
nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t device, nvmlTemperatureThresholds_t thresholdType,
                                               unsigned int *temp);
nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t errorType,
                                         nvmlEccCounterType_t counterType, unsigned long long *eccCounts);
nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode, unsigned int *pendingMode);

/* ---- Every other export: answered without reading arguments (see the top) ---- */
nvmlReturn_t nvmlComputeInstanceDestroy(void);
nvmlReturn_t nvmlComputeInstanceGetInfo(void);
nvmlReturn_t nvmlComputeInstanceGetInfo_v2(void);
nvmlReturn_t nvmlDeviceClearAccountingPids(void);
nvmlReturn_t nvmlDeviceClearCpuAffinity(void);
nvmlReturn_t nvmlDeviceClearEccErrorCounts(void);
nvmlReturn_t nvmlDeviceClearFieldValues(void);
nvmlReturn_t nvmlDeviceCreateGpuInstance(void);
nvmlReturn_t nvmlDeviceCreateGpuInstanceWithPlacement(void);
nvmlReturn_t nvmlDeviceDiscoverGpus(void);
nvmlReturn_t nvmlDeviceFreezeNvLinkUtilizationCounter(void);
nvmlReturn_t nvmlDeviceGetAPIRestriction(void);
nvmlReturn_t nvmlDeviceGetAccountingBufferSize(void);
nvmlReturn_t nvmlDeviceGetAccountingMode(void);
nvmlReturn_t nvmlDeviceGetAccountingPids(void);
nvmlReturn_t nvmlDeviceGetAccountingStats(void);
nvmlReturn_t nvmlDeviceGetAccountingStats_v2(void);
nvmlReturn_t nvmlDeviceGetActiveVgpus(void);
nvmlReturn_t nvmlDeviceGetAdaptiveClockInfoStatus(void);
nvmlReturn_t nvmlDeviceGetAddressingMode(void);
nvmlReturn_t nvmlDeviceGetAttributes(void);
nvmlReturn_t nvmlDeviceGetAttributes_v2(void);
nvmlReturn_t nvmlDeviceGetAutoBoostedClocksEnabled(void);
nvmlReturn_t nvmlDeviceGetBBXTimeData_v1(void);
nvmlReturn_t nvmlDeviceGetBridgeChipInfo(void);
nvmlReturn_t nvmlDeviceGetBusType(void);
nvmlReturn_t nvmlDeviceGetC2cModeInfoV(void);
nvmlReturn_t nvmlDeviceGetCapabilities(void);
nvmlReturn_t nvmlDeviceGetClkMonStatus(void);
nvmlReturn_t nvmlDeviceGetClock(void);
nvmlReturn_t nvmlDeviceGetClockOffsets(void);
nvmlReturn_t nvmlDeviceGetComputeInstanceId(void);
nvmlReturn_t nvmlDeviceGetConfComputeGpuAttestationReport(void);
nvmlReturn_t nvmlDeviceGetConfComputeGpuCertificate(void);
nvmlReturn_t nvmlDeviceGetConfComputeMemSizeInfo(void);
nvmlReturn_t nvmlDeviceGetConfComputeProtectedMemoryUsage(void);
nvmlReturn_t nvmlDeviceGetCoolerInfo(void);
nvmlReturn_t nvmlDeviceGetCpuAffinity(void);
nvmlReturn_t nvmlDeviceGetCpuAffinityWithinScope(void);
nvmlReturn_t nvmlDeviceGetCreatableVgpus(void);
nvmlReturn_t nvmlDeviceGetCurrentClockFreqs(void);
nvmlReturn_t nvmlDeviceGetDecoderUtilization(void);
nvmlReturn_t nvmlDeviceGetDefaultEccMode(void);
nvmlReturn_t nvmlDeviceGetDetailedEccErrors(void);
nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(void);
nvmlReturn_t nvmlDeviceGetDramEncryptionMode(void);
nvmlReturn_t nvmlDeviceGetDriverModel(void);
nvmlReturn_t nvmlDeviceGetDriverModel_v2(void);
nvmlReturn_t nvmlDeviceGetDynamicPstatesInfo(void);
nvmlReturn_t nvmlDeviceGetEncoderCapacity(void);
nvmlReturn_t nvmlDeviceGetEncoderSessions(void);
nvmlReturn_t nvmlDeviceGetEncoderStats(void);
nvmlReturn_t nvmlDeviceGetEncoderUtilization(void);
nvmlReturn_t nvmlDeviceGetFBCSessions(void);
nvmlReturn_t nvmlDeviceGetFBCStats(void);
nvmlReturn_t nvmlDeviceGetFanControlPolicy_v2(void);
nvmlReturn_t nvmlDeviceGetFanSpeedRPM(void);
nvmlReturn_t nvmlDeviceGetFanSpeed_v2(void);
nvmlReturn_t nvmlDeviceGetFieldValues(void);
nvmlReturn_t nvmlDeviceGetGpcClkMinMaxVfOffset(void);
nvmlReturn_t nvmlDeviceGetGpcClkVfOffset(void);
nvmlReturn_t nvmlDeviceGetGpuFabricInfo(void);
nvmlReturn_t nvmlDeviceGetGpuFabricInfoV(void);
nvmlReturn_t nvmlDeviceGetGpuInstanceById(void);
nvmlReturn_t nvmlDeviceGetGpuInstanceId(void);
nvmlReturn_t nvmlDeviceGetGpuInstancePossiblePlacements(void);
nvmlReturn_t nvmlDeviceGetGpuInstancePossiblePlacements_v2(void);
nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfo(void);
nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfoByIdV(void);
nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfoV(void);
nvmlReturn_t nvmlDeviceGetGpuInstanceRemainingCapacity(void);
nvmlReturn_t nvmlDeviceGetGpuInstances(void);
nvmlReturn_t nvmlDeviceGetGpuMaxPcieLinkGeneration(void);
nvmlReturn_t nvmlDeviceGetGpuOperationMode(void);
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(void);
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(void);
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(void);
nvmlReturn_t nvmlDeviceGetGridLicensableFeatures(void);
nvmlReturn_t nvmlDeviceGetGridLicensableFeatures_v2(void);
nvmlReturn_t nvmlDeviceGetGridLicensableFeatures_v3(void);
nvmlReturn_t nvmlDeviceGetGridLicensableFeatures_v4(void);
nvmlReturn_t nvmlDeviceGetGspFirmwareMode(void);
nvmlReturn_t nvmlDeviceGetGspFirmwareVersion(void);
nvmlReturn_t nvmlDeviceGetHandleBySerial(void);
nvmlReturn_t nvmlDeviceGetHandleByUUIDV(void);
nvmlReturn_t nvmlDeviceGetHostVgpuMode(void);
nvmlReturn_t nvmlDeviceGetHostname_v1(void);
nvmlReturn_t nvmlDeviceGetInforomConfigurationChecksum(void);
nvmlReturn_t nvmlDeviceGetInforomVersion(void);
nvmlReturn_t nvmlDeviceGetIrqNum(void);
nvmlReturn_t nvmlDeviceGetJpgUtilization(void);
nvmlReturn_t nvmlDeviceGetLastBBXFlushTime(void);
nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses(void);
nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v2(void);
nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v3(void);
nvmlReturn_t nvmlDeviceGetMarginTemperature(void);
nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(void);
nvmlReturn_t nvmlDeviceGetMemClkMinMaxVfOffset(void);
nvmlReturn_t nvmlDeviceGetMemClkVfOffset(void);
nvmlReturn_t nvmlDeviceGetMemoryAffinity(void);
nvmlReturn_t nvmlDeviceGetMemoryErrorCounter(void);
nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(void);
nvmlReturn_t nvmlDeviceGetMinMaxClockOfPState(void);
nvmlReturn_t nvmlDeviceGetMinMaxFanSpeed(void);
nvmlReturn_t nvmlDeviceGetModuleId(void);
nvmlReturn_t nvmlDeviceGetNumFans(void);
nvmlReturn_t nvmlDeviceGetNumaNodeId(void);
nvmlReturn_t nvmlDeviceGetNvLinkCapability(void);
nvmlReturn_t nvmlDeviceGetNvLinkErrorCounter(void);
nvmlReturn_t nvmlDeviceGetNvLinkInfo(void);
nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(void);
nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo(void);
nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(void);
nvmlReturn_t nvmlDeviceGetNvLinkState(void);
nvmlReturn_t nvmlDeviceGetNvLinkUtilizationControl(void);
nvmlReturn_t nvmlDeviceGetNvLinkUtilizationCounter(void);
nvmlReturn_t nvmlDeviceGetNvLinkVersion(void);
nvmlReturn_t nvmlDeviceGetNvlinkBwMode(void);
nvmlReturn_t nvmlDeviceGetNvlinkSupportedBwModes(void);
nvmlReturn_t nvmlDeviceGetOfaUtilization(void);
nvmlReturn_t nvmlDeviceGetP2PStatus(void);
nvmlReturn_t nvmlDeviceGetPciInfoExt(void);
nvmlReturn_t nvmlDeviceGetPcieReplayCounter(void);
nvmlReturn_t nvmlDeviceGetPcieThroughput(void);
nvmlReturn_t nvmlDeviceGetPdi(void);
nvmlReturn_t nvmlDeviceGetPerformanceModes(void);
nvmlReturn_t nvmlDeviceGetPgpuMetadataString(void);
nvmlReturn_t nvmlDeviceGetPlatformInfo(void);
nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(void);
nvmlReturn_t nvmlDeviceGetPowerMizerMode_v1(void);
nvmlReturn_t nvmlDeviceGetPowerSource(void);
nvmlReturn_t nvmlDeviceGetProcessUtilization(void);
nvmlReturn_t nvmlDeviceGetProcessesUtilizationInfo(void);
nvmlReturn_t nvmlDeviceGetRemappedRows(void);
nvmlReturn_t nvmlDeviceGetRemappedRows_v2(void);
nvmlReturn_t nvmlDeviceGetRepairStatus(void);
nvmlReturn_t nvmlDeviceGetRetiredPages(void);
nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(void);
nvmlReturn_t nvmlDeviceGetRetiredPages_v2(void);
nvmlReturn_t nvmlDeviceGetRowRemapperHistogram(void);
nvmlReturn_t nvmlDeviceGetRunningProcessDetailList(void);
nvmlReturn_t nvmlDeviceGetSamples(void);
nvmlReturn_t nvmlDeviceGetSramEccErrorStatus(void);
nvmlReturn_t nvmlDeviceGetSramUniqueUncorrectedEccErrorCounts(void);
nvmlReturn_t nvmlDeviceGetSupportedClocksEventReasons(void);
nvmlReturn_t nvmlDeviceGetSupportedClocksThrottleReasons(void);
nvmlReturn_t nvmlDeviceGetSupportedEventTypes(void);
nvmlReturn_t nvmlDeviceGetSupportedGraphicsClocks(void);
nvmlReturn_t nvmlDeviceGetSupportedMemoryClocks(void);
nvmlReturn_t nvmlDeviceGetSupportedPerformanceStates(void);
nvmlReturn_t nvmlDeviceGetSupportedVgpus(void);
nvmlReturn_t nvmlDeviceGetTargetFanSpeed(void);
nvmlReturn_t nvmlDeviceGetTemperatureV(void);
nvmlReturn_t nvmlDeviceGetThermalSettings(void);
nvmlReturn_t nvmlDeviceGetTopologyCommonAncestor(void);
nvmlReturn_t nvmlDeviceGetTopologyNearestGpus(void);
nvmlReturn_t nvmlDeviceGetUnrepairableMemoryFlag_v1(void);
nvmlReturn_t nvmlDeviceGetVgpuCapabilities(void);
nvmlReturn_t nvmlDeviceGetVgpuHeterogeneousMode(void);
nvmlReturn_t nvmlDeviceGetVgpuInstancesUtilizationInfo(void);
nvmlReturn_t nvmlDeviceGetVgpuMetadata(void);
nvmlReturn_t nvmlDeviceGetVgpuProcessUtilization(void);
nvmlReturn_t nvmlDeviceGetVgpuProcessesUtilizationInfo(void);
nvmlReturn_t nvmlDeviceGetVgpuSchedulerCapabilities(void);
nvmlReturn_t nvmlDeviceGetVgpuSchedulerLog(void);
nvmlReturn_t nvmlDeviceGetVgpuSchedulerLog_v2(void);
nvmlReturn_t nvmlDeviceGetVgpuSchedulerState(void);
nvmlReturn_t nvmlDeviceGetVgpuSchedulerState_v2(void);
nvmlReturn_t nvmlDeviceGetVgpuTypeCreatablePlacements(void);
nvmlReturn_t nvmlDeviceGetVgpuTypeSupportedPlacements(void);
nvmlReturn_t nvmlDeviceGetVgpuUtilization(void);
nvmlReturn_t nvmlDeviceGetViolationStatus(void);
nvmlReturn_t nvmlDeviceGetVirtualizationMode(void);
nvmlReturn_t nvmlDeviceIsMigDeviceHandle(void);
nvmlReturn_t nvmlDeviceModifyDrainState(void);
nvmlReturn_t nvmlDeviceOnSameBoard(void);
nvmlReturn_t nvmlDevicePowerSmoothingActivatePresetProfile(void);
nvmlReturn_t nvmlDevicePowerSmoothingSetState(void);
nvmlReturn_t nvmlDevicePowerSmoothingUpdatePresetProfileParam(void);
nvmlReturn_t nvmlDeviceQueryDrainState(void);
nvmlReturn_t nvmlDeviceReadPRMCounters_v1(void);
nvmlReturn_t nvmlDeviceReadWritePRM_v1(void);
nvmlReturn_t nvmlDeviceRegisterEvents(void);
nvmlReturn_t nvmlDeviceRemoveGpu(void);
nvmlReturn_t nvmlDeviceRemoveGpu_v2(void);
nvmlReturn_t nvmlDeviceResetApplicationsClocks(void);
nvmlReturn_t nvmlDeviceResetGpuLockedClocks(void);
nvmlReturn_t nvmlDeviceResetMemoryLockedClocks(void);
nvmlReturn_t nvmlDeviceResetNvLinkErrorCounters(void);
nvmlReturn_t nvmlDeviceResetNvLinkUtilizationCounter(void);
nvmlReturn_t nvmlDeviceSetAPIRestriction(void);
nvmlReturn_t nvmlDeviceSetAccountingMode(void);
nvmlReturn_t nvmlDeviceSetApplicationsClocks(void);
nvmlReturn_t nvmlDeviceSetAutoBoostedClocksEnabled(void);
nvmlReturn_t nvmlDeviceSetClockOffsets(void);
nvmlReturn_t nvmlDeviceSetComputeMode(void);
nvmlReturn_t nvmlDeviceSetConfComputeUnprotectedMemSize(void);
nvmlReturn_t nvmlDeviceSetCpuAffinity(void);
nvmlReturn_t nvmlDeviceSetDefaultAutoBoostedClocksEnabled(void);
nvmlReturn_t nvmlDeviceSetDefaultFanSpeed_v2(void);
nvmlReturn_t nvmlDeviceSetDramEncryptionMode(void);
nvmlReturn_t nvmlDeviceSetDriverModel(void);
nvmlReturn_t nvmlDeviceSetEccMode(void);
nvmlReturn_t nvmlDeviceSetFanControlPolicy(void);
nvmlReturn_t nvmlDeviceSetFanSpeed_v2(void);
nvmlReturn_t nvmlDeviceSetGpcClkVfOffset(void);
nvmlReturn_t nvmlDeviceSetGpuLockedClocks(void);
nvmlReturn_t nvmlDeviceSetGpuOperationMode(void);
nvmlReturn_t nvmlDeviceSetHostname_v1(void);
nvmlReturn_t nvmlDeviceSetMemClkVfOffset(void);
nvmlReturn_t nvmlDeviceSetMemoryLockedClocks(void);
nvmlReturn_t nvmlDeviceSetMigMode(void);
nvmlReturn_t nvmlDeviceSetNvLinkDeviceLowPowerThreshold(void);
nvmlReturn_t nvmlDeviceSetNvLinkUtilizationControl(void);
nvmlReturn_t nvmlDeviceSetNvlinkBwMode(void);
nvmlReturn_t nvmlDeviceSetPersistenceMode(void);
nvmlReturn_t nvmlDeviceSetPowerManagementLimit(void);
nvmlReturn_t nvmlDeviceSetPowerManagementLimit_v2(void);
nvmlReturn_t nvmlDeviceSetPowerMizerMode_v1(void);
nvmlReturn_t nvmlDeviceSetRusdSettings_v1(void);
nvmlReturn_t nvmlDeviceSetTemperatureThreshold(void);
nvmlReturn_t nvmlDeviceSetVgpuCapabilities(void);
nvmlReturn_t nvmlDeviceSetVgpuHeterogeneousMode(void);
nvmlReturn_t nvmlDeviceSetVgpuSchedulerState(void);
nvmlReturn_t nvmlDeviceSetVgpuSchedulerState_v2(void);
nvmlReturn_t nvmlDeviceSetVirtualizationMode(void);
nvmlReturn_t nvmlDeviceValidateInforom(void);
nvmlReturn_t nvmlDeviceVgpuForceGspUnload(void);
nvmlReturn_t nvmlDeviceWorkloadPowerProfileClearRequestedProfiles(void);
nvmlReturn_t nvmlDeviceWorkloadPowerProfileGetCurrentProfiles(void);
nvmlReturn_t nvmlDeviceWorkloadPowerProfileGetProfilesInfo(void);
nvmlReturn_t nvmlDeviceWorkloadPowerProfileSetRequestedProfiles(void);
nvmlReturn_t nvmlDeviceWorkloadPowerProfileUpdateProfiles_v1(void);
nvmlReturn_t nvmlEventSetCreate(void);
nvmlReturn_t nvmlEventSetFree(void);
nvmlReturn_t nvmlEventSetWait(void);
nvmlReturn_t nvmlEventSetWait_v2(void);
nvmlReturn_t nvmlGetExcludedDeviceCount(void);
nvmlReturn_t nvmlGetExcludedDeviceInfoByIndex(void);
nvmlReturn_t nvmlGetVgpuCompatibility(void);
nvmlReturn_t nvmlGetVgpuDriverCapabilities(void);
nvmlReturn_t nvmlGetVgpuVersion(void);
nvmlReturn_t nvmlGpmMetricsGet(void);
nvmlReturn_t nvmlGpmMigSampleGet(void);
nvmlReturn_t nvmlGpmQueryDeviceSupport(void);
nvmlReturn_t nvmlGpmQueryIfStreamingEnabled(void);
nvmlReturn_t nvmlGpmSampleAlloc(void);
nvmlReturn_t nvmlGpmSampleFree(void);
nvmlReturn_t nvmlGpmSampleGet(void);
nvmlReturn_t nvmlGpmSetStreamingEnabled(void);
nvmlReturn_t nvmlGpuInstanceCreateComputeInstance(void);
nvmlReturn_t nvmlGpuInstanceCreateComputeInstanceWithPlacement(void);
nvmlReturn_t nvmlGpuInstanceDestroy(void);
nvmlReturn_t nvmlGpuInstanceGetActiveVgpus(void);
nvmlReturn_t nvmlGpuInstanceGetComputeInstanceById(void);
nvmlReturn_t nvmlGpuInstanceGetComputeInstancePossiblePlacements(void);
nvmlReturn_t nvmlGpuInstanceGetComputeInstanceProfileInfo(void);
nvmlReturn_t nvmlGpuInstanceGetComputeInstanceProfileInfoV(void);
nvmlReturn_t nvmlGpuInstanceGetComputeInstanceRemainingCapacity(void);
nvmlReturn_t nvmlGpuInstanceGetComputeInstances(void);
nvmlReturn_t nvmlGpuInstanceGetCreatableVgpus(void);
nvmlReturn_t nvmlGpuInstanceGetInfo(void);
nvmlReturn_t nvmlGpuInstanceGetVgpuHeterogeneousMode(void);
nvmlReturn_t nvmlGpuInstanceGetVgpuSchedulerLog(void);
nvmlReturn_t nvmlGpuInstanceGetVgpuSchedulerLog_v2(void);
nvmlReturn_t nvmlGpuInstanceGetVgpuSchedulerState(void);
nvmlReturn_t nvmlGpuInstanceGetVgpuSchedulerState_v2(void);
nvmlReturn_t nvmlGpuInstanceGetVgpuTypeCreatablePlacements(void);
nvmlReturn_t nvmlGpuInstanceSetVgpuHeterogeneousMode(void);
nvmlReturn_t nvmlGpuInstanceSetVgpuSchedulerState(void);
nvmlReturn_t nvmlGpuInstanceSetVgpuSchedulerState_v2(void);
nvmlReturn_t nvmlSetVgpuVersion(void);
nvmlReturn_t nvmlSystemEventSetCreate(void);
nvmlReturn_t nvmlSystemEventSetFree(void);
nvmlReturn_t nvmlSystemEventSetWait(void);
nvmlReturn_t nvmlSystemGetCPER_v1(void);
nvmlReturn_t nvmlSystemGetConfComputeCapabilities(void);
nvmlReturn_t nvmlSystemGetConfComputeGpusReadyState(void);
nvmlReturn_t nvmlSystemGetConfComputeKeyRotationThresholdInfo(void);
nvmlReturn_t nvmlSystemGetConfComputeSettings(void);
nvmlReturn_t nvmlSystemGetConfComputeState(void);
nvmlReturn_t nvmlSystemGetDriverBranch(void);
nvmlReturn_t nvmlSystemGetHicVersion(void);
nvmlReturn_t nvmlSystemGetNvlinkBwMode(void);
nvmlReturn_t nvmlSystemGetTopologyGpuSet(void);
nvmlReturn_t nvmlSystemRegisterEvents(void);
nvmlReturn_t nvmlSystemSetConfComputeGpusReadyState(void);
nvmlReturn_t nvmlSystemSetConfComputeKeyRotationThresholdInfo(void);
nvmlReturn_t nvmlSystemSetNvlinkBwMode(void);
nvmlReturn_t nvmlUnitGetCount(void);
nvmlReturn_t nvmlUnitGetDevices(void);
nvmlReturn_t nvmlUnitGetFanSpeedInfo(void);
nvmlReturn_t nvmlUnitGetHandleByIndex(void);
nvmlReturn_t nvmlUnitGetLedState(void);
nvmlReturn_t nvmlUnitGetPsuInfo(void);
nvmlReturn_t nvmlUnitGetTemperature(void);
nvmlReturn_t nvmlUnitGetUnitInfo(void);
nvmlReturn_t nvmlUnitSetLedState(void);
nvmlReturn_t nvmlVgpuInstanceClearAccountingPids(void);
nvmlReturn_t nvmlVgpuInstanceGetAccountingMode(void);
nvmlReturn_t nvmlVgpuInstanceGetAccountingPids(void);
nvmlReturn_t nvmlVgpuInstanceGetAccountingStats(void);
nvmlReturn_t nvmlVgpuInstanceGetEccMode(void);
nvmlReturn_t nvmlVgpuInstanceGetEncoderCapacity(void);
nvmlReturn_t nvmlVgpuInstanceGetEncoderSessions(void);
nvmlReturn_t nvmlVgpuInstanceGetEncoderStats(void);
nvmlReturn_t nvmlVgpuInstanceGetFBCSessions(void);
nvmlReturn_t nvmlVgpuInstanceGetFBCStats(void);
nvmlReturn_t nvmlVgpuInstanceGetFbUsage(void);
nvmlReturn_t nvmlVgpuInstanceGetFrameRateLimit(void);
nvmlReturn_t nvmlVgpuInstanceGetGpuInstanceId(void);
nvmlReturn_t nvmlVgpuInstanceGetGpuPciId(void);
nvmlReturn_t nvmlVgpuInstanceGetLicenseInfo(void);
nvmlReturn_t nvmlVgpuInstanceGetLicenseInfo_v2(void);
nvmlReturn_t nvmlVgpuInstanceGetLicenseStatus(void);
nvmlReturn_t nvmlVgpuInstanceGetMdevUUID(void);
nvmlReturn_t nvmlVgpuInstanceGetMetadata(void);
nvmlReturn_t nvmlVgpuInstanceGetPlacementId(void);
nvmlReturn_t nvmlVgpuInstanceGetRuntimeStateSize(void);
nvmlReturn_t nvmlVgpuInstanceGetType(void);
nvmlReturn_t nvmlVgpuInstanceGetUUID(void);
nvmlReturn_t nvmlVgpuInstanceGetVmDriverVersion(void);
nvmlReturn_t nvmlVgpuInstanceGetVmID(void);
nvmlReturn_t nvmlVgpuInstanceSetEncoderCapacity(void);
nvmlReturn_t nvmlVgpuTypeGetBAR1Info(void);
nvmlReturn_t nvmlVgpuTypeGetCapabilities(void);
nvmlReturn_t nvmlVgpuTypeGetClass(void);
nvmlReturn_t nvmlVgpuTypeGetDeviceID(void);
nvmlReturn_t nvmlVgpuTypeGetFbReservation(void);
nvmlReturn_t nvmlVgpuTypeGetFrameRateLimit(void);
nvmlReturn_t nvmlVgpuTypeGetFramebufferSize(void);
nvmlReturn_t nvmlVgpuTypeGetGpuInstanceProfileId(void);
nvmlReturn_t nvmlVgpuTypeGetGspHeapSize(void);
nvmlReturn_t nvmlVgpuTypeGetLicense(void);
nvmlReturn_t nvmlVgpuTypeGetMaxInstances(void);
nvmlReturn_t nvmlVgpuTypeGetMaxInstancesPerGpuInstance(void);
nvmlReturn_t nvmlVgpuTypeGetMaxInstancesPerVm(void);
nvmlReturn_t nvmlVgpuTypeGetName(void);
nvmlReturn_t nvmlVgpuTypeGetNumDisplayHeads(void);
nvmlReturn_t nvmlVgpuTypeGetResolution(void);

#ifdef __cplusplus
}
#endif

#endif
