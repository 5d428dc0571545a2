// SPDX-License-Identifier: Apache-2.0
/*
 * The version handshake (docs/protocol.md §1): Hello and HelloReply built
 * and checked the same way on both sides, so the guest and the server print
 * the same sentence for a mismatch; and the one frame a server sends to a
 * peer of another protocol version, readable by that peer's decoder.
 */
#include "vgpu/wire.h"
#include "le.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void say(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (!why || whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

void vgpu_wire_version_message(uint32_t guest_version, uint32_t server_version,
                               char *why, size_t whylen)
{
    say(why, whylen,
        "guest speaks protocol %u, server speaks %u: rebuild the shim and "
        "server from the same vgpu release",
        guest_version, server_version);
}

static void call_table_message(uint64_t guest_hash, uint64_t server_hash,
                               char *why, size_t whylen)
{
    say(why, whylen,
        "guest shim and vgpu-server were generated from different call tables "
        "(hash %016llx vs %016llx): rebuild both from the same CUDA headers "
        "and registry",
        (unsigned long long)guest_hash, (unsigned long long)server_hash);
}

void vgpu_hello_init(Vgpu__Wire__Hello *h, uint64_t call_table_hash,
                     const char *api, const char *client_name,
                     uint32_t client_pid, const char *client_host)
{
    /* protobuf-c's string fields are char * but are only read by pack. */
    vgpu__wire__hello__init(h);
    h->protocol_version = VGPU_PROTOCOL_VERSION;
    h->call_table_hash = call_table_hash;
    h->api = (char *)(api ? api : "");
    h->client_name = (char *)(client_name ? client_name : "");
    h->client_pid = client_pid;
    h->client_host = (char *)(client_host ? client_host : "");
    h->features = VGPU_FEATURE_DEVICE_OUTPUT;
}

int vgpu_hello_check(const Vgpu__Wire__Hello *h, uint64_t expected_hash,
                     char *why, size_t whylen)
{
    say(why, whylen, "%s", "");
    if (!h) {
        say(why, whylen, "no Hello received");
        return VGPU_WIRE_E_INVAL;
    }
    if (h->protocol_version != VGPU_PROTOCOL_VERSION) {
        vgpu_wire_version_message(h->protocol_version, VGPU_PROTOCOL_VERSION,
                                  why, whylen);
        return VGPU_WIRE_E_BAD_VERSION;
    }
    if (h->call_table_hash != expected_hash) {
        call_table_message(h->call_table_hash, expected_hash, why, whylen);
        return VGPU_WIRE_E_CALL_TABLE;
    }
    return 0;
}

void vgpu_hello_reply_init(Vgpu__Wire__HelloReply *r, int rc,
                           uint64_t server_hash, const char *server_version,
                           const char *why)
{
    vgpu__wire__hello_reply__init(r);
    r->ok = rc == 0;
    r->protocol_version = VGPU_PROTOCOL_VERSION;
    r->call_table_hash = server_hash;
    r->server_version = (char *)(server_version ? server_version : "");
    r->message = (char *)(why ? why : "");
}

int vgpu_hello_reply_check(const Vgpu__Wire__HelloReply *r,
                           uint64_t expected_hash, char *why, size_t whylen)
{
    say(why, whylen, "%s", "");
    if (!r) {
        say(why, whylen, "no HelloReply received");
        return VGPU_WIRE_E_INVAL;
    }
    /* Our own comparison first: it names both sides' values even when the
     * server's message is empty or from an older release. */
    if (r->protocol_version != VGPU_PROTOCOL_VERSION) {
        vgpu_wire_version_message(VGPU_PROTOCOL_VERSION, r->protocol_version,
                                  why, whylen);
        return VGPU_WIRE_E_BAD_VERSION;
    }
    if (r->call_table_hash != expected_hash) {
        call_table_message(expected_hash, r->call_table_hash, why, whylen);
        return VGPU_WIRE_E_CALL_TABLE;
    }
    if (!r->ok) {
        say(why, whylen, "vgpu-server refused the session: %s",
            (r->message && r->message[0]) ? r->message : "(no reason given)");
        return VGPU_WIRE_E_REFUSED;
    }
    return 0;
}

int vgpu_hello_mismatch_encode(uint16_t peer_version, uint64_t seq, uint64_t server_hash,
                               const char *server_version, uint8_t **out, size_t *out_len)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__HelloReply r;
    struct vgpu_frame_header h = { .flags = VGPU_FRAME_F_REPLY, .seq = seq };
    char why[200];
    int rc;

    vgpu_wire_version_message(peer_version, VGPU_PROTOCOL_VERSION, why, sizeof(why));
    vgpu_hello_reply_init(&r, VGPU_WIRE_E_BAD_VERSION, server_hash, server_version, why);
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO_REPLY;
    env.hello_reply = &r;
    rc = vgpu_frame_encode(&h, &env, NULL, 0, NULL, out, out_len);
    /*
     * The peer's decoder accepts only its own version in the header; magic
     * and version sit at the same offsets in every version, and Hello and
     * HelloReply keep their fields for all time, so this is a frame it reads.
     */
    if (rc == 0)
        put_le16(*out + VGPU_FRAME_VERSION_OFFSET, peer_version);
    return rc;
}
