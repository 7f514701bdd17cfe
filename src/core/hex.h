/* SPDX-License-Identifier: Apache-2.0 */
/* One hex digit's value, for the percent-decoders and chunk-size readers that each wrote it. */
#ifndef MESH_CORE_HEX_H
#define MESH_CORE_HEX_H

/* 0..15 for 0-9, a-f and A-F; -1 for anything else. Pure; inline because it sits in byte loops
 * on the proxy's path (tap filters) as well as meshd's and meshctl's. */
static inline int mesh_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
