/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu wire protocol: the frame format shared by the guest shim, the
 * vgpu-stub device's chunking and vgpu-server.
 *
 * A frame is a fixed 32-byte little-endian header, then a protobuf-c
 * Envelope of env_len bytes, then a raw payload area of payload_len bytes
 * that segments in the envelope point into. Bulk data (memcpy contents,
 * fatbins) lives only in the payload area and never passes through protobuf.
 * docs/protocol.md is the normative description; this header is its C view.
 *
 * Nothing here keeps global state; every function is safe to call from
 * several threads on distinct objects.
 */
#ifndef VGPU_WIRE_H
#define VGPU_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "envelope.pb-c.h"
#include "vgpu/stub_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Protocol version spoken by this build. Bumped on any change that an older
 * peer cannot ignore. The magic and the version sit at offsets 0 and 4 of
 * the header in every version, so a peer can always tell "not vgpu" from
 * "another vgpu version" and say so.
 */
#define VGPU_PROTOCOL_VERSION 2u
/* Where the version sits in a frame header: the same offset in every version. */
#define VGPU_FRAME_VERSION_OFFSET 4

/*
 * The header's fixed facts, which the vgpu-stub device checks too, come
 * from vgpu/stub_abi.h: VGPU_FRAME_MAGIC, VGPU_FRAME_HEADER_SIZE, the field
 * offsets VGPU_FRAME_OFF_*, and the flags VGPU_FRAME_F_REPLY,
 * VGPU_FRAME_F_COMPACT (the envelope is in the compact form: a call or
 * result batch) and VGPU_FRAME_F_KNOWN.  Every bit not in
 * VGPU_FRAME_F_KNOWN is reserved and must be 0; a new flag goes there, so
 * that the device accepts it as the codec does.
 */

/* Default limits (struct vgpu_wire_limits). */
#define VGPU_WIRE_MAX_ENV          (1u << 20)   /* 1 MiB */
#define VGPU_WIRE_MAX_PAYLOAD      (256u << 20) /* 256 MiB */
#define VGPU_WIRE_MAX_CALLS        4096u
#define VGPU_WIRE_MAX_SEGMENTS     16u

/*
 * Decode/encode errors. All distinct and negative; they are kept clear of
 * the -errno range (except NOMEM, which is -ENOMEM's value on Linux) so that
 * a transport may return either kind through one int.
 */
enum vgpu_wire_err {
    VGPU_WIRE_OK                 = 0,
    VGPU_WIRE_E_NOMEM            = -12,   /* == -ENOMEM */
    VGPU_WIRE_E_TRUNCATED        = -1001, /* fewer bytes than the frame needs */
    VGPU_WIRE_E_TRAILING         = -1002, /* more bytes than the frame holds */
    VGPU_WIRE_E_BAD_MAGIC        = -1003,
    VGPU_WIRE_E_BAD_VERSION      = -1004, /* header version != ours */
    VGPU_WIRE_E_BAD_FLAGS        = -1005, /* reserved flag bits or reserved field */
    VGPU_WIRE_E_ENV_TOO_LARGE    = -1006, /* env_len > limit */
    VGPU_WIRE_E_PAYLOAD_TOO_LARGE = -1007, /* payload_len > limit */
    VGPU_WIRE_E_MALFORMED        = -1008, /* unpack failed or no body */
    VGPU_WIRE_E_UNKNOWN_CALL     = -1009, /* call_known() rejected a call id */
    VGPU_WIRE_E_BAD_SEGMENT      = -1010, /* segment outside the payload area */
    VGPU_WIRE_E_TOO_MANY_CALLS   = -1011,
    VGPU_WIRE_E_TOO_MANY_SEGMENTS = -1012,
    VGPU_WIRE_E_ENV_BUDGET       = -1013, /* unpacked envelope would exceed
                                             the memory budget the limits imply */
    VGPU_WIRE_E_CALL_TABLE       = -1014, /* handshake: call table hash differs */
    VGPU_WIRE_E_INVAL            = -1015, /* bad argument from our own caller */
    VGPU_WIRE_E_REFUSED          = -1016, /* handshake: server said ok = false */
};

/*
 * Static description of a human-readable error. Never NULL; for a code it
 * does not know it returns "unknown vgpu wire error".
 */
const char *vgpu_wire_strerror(int err);

/*
 * What a decoder accepts. A NULL limits pointer anywhere in this API means
 * VGPU_WIRE_LIMITS_DEFAULT. max_calls bounds calls in a CallBatch and
 * results in a ResultBatch; max_segments bounds segments per call/result.
 */
/*
 * What a client announces it understands (Hello.features), so a server
 * uses it only with clients that do; an older client announces none.
 *   DEVICE_OUTPUT: ResultBatch.device_output and Control FetchDeviceOutput.
 */
#define VGPU_FEATURE_DEVICE_OUTPUT 0x1u

struct vgpu_wire_limits {
    uint32_t max_env;
    uint32_t max_payload;
    uint32_t max_calls;
    uint32_t max_segments;
};

#define VGPU_WIRE_LIMITS_DEFAULT                                            \
    ((struct vgpu_wire_limits){ .max_env = VGPU_WIRE_MAX_ENV,               \
                                .max_payload = VGPU_WIRE_MAX_PAYLOAD,       \
                                .max_calls = VGPU_WIRE_MAX_CALLS,           \
                                .max_segments = VGPU_WIRE_MAX_SEGMENTS })

/* The header in host byte order; the wire form is produced field by field. */
struct vgpu_frame_header {
    uint32_t magic;       /* VGPU_FRAME_MAGIC */
    uint16_t version;     /* VGPU_PROTOCOL_VERSION */
    uint16_t flags;       /* VGPU_FRAME_F_* */
    uint32_t env_len;     /* bytes of protobuf Envelope after the header */
    uint32_t payload_len; /* bytes of raw payload after the envelope */
    uint64_t seq;         /* chosen by the requester, echoed in the reply */
    uint64_t reserved;    /* must be 0 */
};

/*
 * Serialize every field of hdr exactly as given (no validation, so tests can
 * craft bad headers) into out, little-endian.
 */
void vgpu_frame_header_encode(const struct vgpu_frame_header *hdr,
                              uint8_t out[VGPU_FRAME_HEADER_SIZE]);

/*
 * Parse and validate the first 32 bytes of buf. A stream transport calls
 * this on the first 32 bytes it reads, then reads env_len + payload_len
 * more. Checks, in order: length (TRUNCATED if len < 32), magic, version,
 * flags and reserved, env_len and payload_len against lim.
 *
 * When len >= 32, *out is filled with the raw fields even on failure, so a
 * caller that gets VGPU_WIRE_E_BAD_VERSION can read out->version and tell
 * the peer which versions disagree (see vgpu_wire_version_message()).
 * Returns 0 or a negative enum vgpu_wire_err.
 */
int vgpu_frame_header_decode(const uint8_t *buf, size_t len,
                             const struct vgpu_wire_limits *lim,
                             struct vgpu_frame_header *out);

/*
 * Returns nonzero if call_id names a function this side can handle. It is
 * called synchronously from vgpu_frame_decode() only, never after it returns.
 */
typedef int (*vgpu_wire_call_known_fn)(void *opaque, uint32_t call_id);

/* A decoded frame. */
struct vgpu_frame {
    struct vgpu_frame_header hdr;
    /* Owned by the frame; free only with vgpu_frame_release(), never with
     * vgpu__wire__envelope__free_unpacked() (it uses its own allocator). */
    Vgpu__Wire__Envelope *env;
    /* Points into the buffer given to vgpu_frame_decode(): that buffer must
     * outlive every use of payload and of segment pointers. NULL when
     * payload_len is 0. */
    const uint8_t *payload;
    size_t payload_len;
    /* what vgpu_frame_decode_scratch() was lent, and how much of it is used */
    void *scratch;
    size_t scratch_size, scratch_used;
    void *compact_heap;   /* a compact envelope's structures, when they did not fit scratch */
};

/*
 * Strict decode of exactly one complete frame: buf[0..len) must hold the
 * header, the envelope and the payload area and nothing else.
 *
 * On success (0) *out owns an unpacked Envelope whose body is set, whose
 * batches respect lim, whose every segment lies inside the payload area and
 * every call id of which call_known() accepted (NULL callback accepts all).
 * On failure *out is left zeroed (nothing to release) and a negative
 * enum vgpu_wire_err says why. Never reads outside buf[0..len).
 */
int vgpu_frame_decode(const uint8_t *buf, size_t len,
                      const struct vgpu_wire_limits *lim,
                      vgpu_wire_call_known_fn call_known, void *opaque,
                      struct vgpu_frame *out);
/*
 * The same, unpacking the envelope into scratch (scratch_size bytes,
 * max_align_t-aligned, which must outlive the frame) as far as it goes
 * instead of malloc: for hot paths.
 */
int vgpu_frame_decode_scratch(const uint8_t *buf, size_t len,
                              const struct vgpu_wire_limits *lim,
                              vgpu_wire_call_known_fn call_known, void *opaque,
                              void *scratch, size_t scratch_size, struct vgpu_frame *out);

/* Free what vgpu_frame_decode() put in f and zero it. Safe on a zeroed
 * frame and safe to call twice. */
void vgpu_frame_release(struct vgpu_frame *f);

/* Start of a segment of a decoded frame (valid by the decoder's checks);
 * NULL for an empty segment. */
const uint8_t *vgpu_frame_segment(const struct vgpu_frame *f,
                                  const Vgpu__Wire__Segment *seg);

/*
 * Check an Envelope the way the decoder would (body set, batch and segment
 * limits, segments inside a payload area of payload_len bytes, call ids
 * accepted by call_known when not NULL). The encoder runs it so that we
 * never send a frame the peer must reject.
 */
int vgpu_envelope_check(const Vgpu__Wire__Envelope *env, uint64_t payload_len,
                        const struct vgpu_wire_limits *lim,
                        vgpu_wire_call_known_fn call_known, void *opaque);

/*
 * Encoding, in two steps so that the payload is never copied on the way out:
 * vgpu_frame_head_size() says how many bytes the header plus envelope take,
 * vgpu_frame_head_write() writes them into the caller's buffer; the caller
 * then sends the payload bytes right after (writev, a shared ring, ...).
 *
 * From tmpl only seq and flags are used; magic, version and reserved are
 * set to their canonical values and the lengths are computed.
 */
int vgpu_frame_head_size(const Vgpu__Wire__Envelope *env, size_t *out);
/* The same for a frame with these header flags (VGPU_FRAME_F_COMPACT: the compact form). */
int vgpu_frame_head_size_flags(const Vgpu__Wire__Envelope *env, uint16_t flags, size_t *out);

/*
 * Validates env against lim and payload_len (vgpu_envelope_check) and the
 * flags of tmpl, then writes header + envelope to buf. *written receives the
 * number of bytes written (== vgpu_frame_head_size()). Returns 0,
 * VGPU_WIRE_E_INVAL if buflen is too small, or another negative code.
 */
int vgpu_frame_head_write(const struct vgpu_frame_header *tmpl,
                          const Vgpu__Wire__Envelope *env, uint64_t payload_len,
                          const struct vgpu_wire_limits *lim,
                          uint8_t *buf, size_t buflen, size_t *written);

/*
 * Convenience for small frames and tests: header, envelope and the
 * concatenation of payload[0..npayload) in one malloc'ed buffer. On success
 * the caller owns *out and frees it with free(); on failure *out is NULL.
 */
int vgpu_frame_encode(const struct vgpu_frame_header *tmpl,
                      const Vgpu__Wire__Envelope *env,
                      const struct iovec *payload, int npayload,
                      const struct vgpu_wire_limits *lim,
                      uint8_t **out, size_t *out_len);

/*
 * Handshake helpers.
 *
 * vgpu_hello_init() fills h for this build (protocol version, hash and the
 * given strings, which it does not copy: they must outlive h). NULL strings
 * become "".
 */
void vgpu_hello_init(Vgpu__Wire__Hello *h, uint64_t call_table_hash,
                     const char *api, const char *client_name,
                     uint32_t client_pid, const char *client_host);

/*
 * Server side: is this Hello acceptable? Returns 0, VGPU_WIRE_E_BAD_VERSION
 * or VGPU_WIRE_E_CALL_TABLE and writes a sentence for a human into why
 * (always NUL-terminated when whylen > 0; "" on success).
 */
int vgpu_hello_check(const Vgpu__Wire__Hello *h, uint64_t expected_hash,
                     char *why, size_t whylen);

/*
 * Server side: fill r as the answer to a Hello that vgpu_hello_check()
 * judged with result rc and sentence why. Strings are not copied.
 */
void vgpu_hello_reply_init(Vgpu__Wire__HelloReply *r, int rc,
                           uint64_t server_hash, const char *server_version,
                           const char *why);

/*
 * Guest side: does the server's reply let us go on? Returns 0 when ok is set
 * and both version and hash match; otherwise VGPU_WIRE_E_BAD_VERSION,
 * VGPU_WIRE_E_CALL_TABLE, or VGPU_WIRE_E_REFUSED (ok == false for another
 * reason: the server's message is copied into why).
 */
int vgpu_hello_reply_check(const Vgpu__Wire__HelloReply *r,
                           uint64_t expected_hash, char *why, size_t whylen);

/*
 * The sentence for a protocol version mismatch, the same on both sides.
 * Used by the handshake checks and by transports that get
 * VGPU_WIRE_E_BAD_VERSION from a header (out->version is the peer's) and
 * still want to explain it. why is always NUL-terminated when whylen > 0.
 */
void vgpu_wire_version_message(uint32_t guest_version, uint32_t server_version,
                               char *why, size_t whylen);

/*
 * Server side, for a peer whose header carried another protocol version
 * (vgpu_frame_header_decode() returned VGPU_WIRE_E_BAD_VERSION with
 * peer_version filled in): the reply frame that peer can read, a HelloReply
 * {ok: false, protocol_version: ours, message: the sentence naming both
 * versions} under a header that carries the peer's version, since a decoder
 * accepts only its own.  On success *out is a malloc'ed frame of *out_len
 * bytes that the caller frees; otherwise a wire error and *out is NULL.
 */
int vgpu_hello_mismatch_encode(uint16_t peer_version, uint64_t seq, uint64_t server_hash,
                               const char *server_version, uint8_t **out, size_t *out_len);

#ifdef __cplusplus
}
#endif

#endif /* VGPU_WIRE_H */
