/*
 * creto/hsm.h - PKCS#11 HSM provider (SoftHSM2 by default, any module works).
 *
 * Three layers, all in src/hsm/:
 *   - RFC 7512 `pkcs11:` URIs (uri.c): a strict parser with percent-decoding
 *     and a formatter for the URIs `creto hsm` prints;
 *   - a token handle (p11.c): the module loaded with dlopen and initialised
 *     once per process with OS locking, the token found by label, the user
 *     logged in with a PIN from pin-source or a PIN file (never argv: a
 *     pin-value attribute is refused), a thread-safe session pool, and
 *     re-initialisation after fork;
 *   - operations (keyops.c, wrap.c, signer.c, hybrid.c): key generation,
 *     lookup (a URI always resolves to exactly one key), public key export,
 *     signing, AES key wrap (RFC 5649), destroy, and the signer / public
 *     key that src/keys/ hands to every command;
 *   - the envelope (seal.c): AES-256-GCM under an HSM-wrapped data key, the
 *     one seal/unseal for the hybrid key file and the NHI backup.
 *   - mechanisms (mech.c): what a module offers, and the check that refuses
 *     a key whose mechanism it lacks (Ed25519 or AES wrap through p11-kit
 *     remoting);
 *   - failover (failover.c): one signing key on the same token reached
 *     through one or more endpoints (remote HSMs, docs/hsm-remote.md), each
 *     call run on the endpoint's own thread under a deadline.
 * Security events (a failed login, an endpoint down or up, a failover) go
 * to the creto_event_sink in creto_hsm_opts; hsm never includes the audit
 * log.
 *
 * Errors name the PKCS#11 function, the token and the CKR_ code:
 *     "C_Login on token 'enclave': CKR_PIN_INCORRECT"
 * Exit classes (docs/keys.md): a missing module file, a missing key, a wrong
 * PIN or a bad URI are CRETO_EUSAGE (configuration); a module that fails to
 * load or initialise, a missing token, a locked PIN and every other CKR_
 * failure are CRETO_EOP (the HSM is unavailable).  A wrapped blob that does
 * not unwrap is CRETO_EREJECT.
 */
#ifndef CRETO_HSM_H
#define CRETO_HSM_H

#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"
#include "creto/event.h"
#include "creto/sig.h"

#define CRETO_HSM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define CRETO_HSM_URI_MAX 4096     /* longest URI accepted */
#define CRETO_HSM_PIN_MAX 256      /* longest PIN accepted (bytes) */
#define CRETO_HSM_TOKEN_LABEL_MAX 32
#define CRETO_HSM_LABEL_MAX 255    /* object label (CKA_LABEL) */
#define CRETO_HSM_ID_MAX 64        /* object id (CKA_ID) */
#define CRETO_HSM_POOL_MAX 8       /* sessions per token handle */
#define CRETO_HSM_KEYID_BYTES 8    /* CKA_ID that `hsm keygen` assigns */

/* ---- RFC 7512 URIs ---- */

typedef enum creto_p11_type {
	CRETO_P11_TYPE_ANY = 0,
	CRETO_P11_TYPE_PUBLIC,
	CRETO_P11_TYPE_PRIVATE,
	CRETO_P11_TYPE_SECRET_KEY,
	CRETO_P11_TYPE_CERT,
	CRETO_P11_TYPE_DATA,
} creto_p11_type;

/* A parsed URI: every value percent-decoded, NULL when absent.  Text values
 * never contain NUL bytes; id is binary. */
typedef struct creto_p11_uri {
	/* path attributes */
	char *token, *manufacturer, *model, *serial;
	char *library_manufacturer, *library_description, *library_version;
	char *slot_description, *slot_manufacturer;
	unsigned long slot_id;
	int has_slot_id;
	char *object;
	uint8_t *id;
	size_t idlen;
	int has_id;
	creto_p11_type type;
	/* query attributes */
	char *module_path, *module_name;
	char *pin_source;
	char *pin_value; /* secret: wiped by creto_p11_uri_free */
	char *pq_file;   /* x-creto-pq: the hybrid key's ML-DSA file (docs/keys.md §4) */
} creto_p11_uri;

/* Parse a NUL-terminated pkcs11: URI strictly (RFC 7512 §2.3): only the
 * standard path attributes plus vendor "x-" ones (ignored), each at most
 * once; standard query attributes at most once, unknown non-vendor query
 * attributes refused; pin-source together with pin-value refused; every
 * character outside the RFC's sets must be percent-encoded.  A malformed URI
 * is CRETO_EUSAGE naming the attribute.  *out is owned by the caller. */
int creto_p11_uri_parse(const char *s, creto_p11_uri **out, creto_err *e) CRETO_WUR;
void creto_p11_uri_free(creto_p11_uri *u);

/* "public", "private", "secret-key", "cert", "data"; NULL for ANY. */
const char *creto_p11_type_name(creto_p11_type t);

/* Format "pkcs11:token=T;object=L;id=%..;type=Y" with percent-encoding (any
 * part NULL/0 omitted).  No module or PIN attributes.  Malloc'ed; NULL when
 * out of memory. */
char *creto_p11_uri_format(const char *token, const char *object, const uint8_t *id,
			   size_t idlen, creto_p11_type type);

/* The path part of a pkcs11: URI ("pkcs11:token=..;object=.."; no query,
 * so no module path and no PIN source or value), after checking the whole
 * URI with creto_p11_uri_parse: as given, byte for byte, so it names the
 * key the way the operator wrote it.  A malformed URI is the parser's
 * CRETO_EUSAGE; a path longer than cap-1 bytes is CRETO_EUSAGE. */
int creto_p11_uri_path(const char *uri, char *out, size_t cap, creto_err *e) CRETO_WUR;

/* ---- errors ---- */

/* "CKR_PIN_INCORRECT", ...; "CKR_VENDOR_DEFINED+0x.." or "CKR_0x.." for
 * unknown values (buf used then, 32 bytes). */
const char *creto_ckr_name(unsigned long rv, char buf[32]);

/* ---- token handles ---- */

typedef struct creto_hsm creto_hsm;

/* ---- endpoints ----
 * One place a token is reached: a module and, when it shows several
 * matching slots (a p11-kit proxy, two replicas in one module), the slot.
 * On the command line: --endpoint MODULE[,slot-id=N][,serial=S], where
 * MODULE is an absolute path to a PKCS#11 module or p11-kit:NAME, the
 * module that p11-kit's configuration NAME.module describes (how a remote
 * HSM is named: a `remote: unix:path=...` line per endpoint,
 * docs/hsm-remote.md). */
#define CRETO_HSM_ENDPOINTS_MAX 4
#define CRETO_HSM_DEADLINE_MS 2000 /* default deadline of one remote call */
#define CRETO_HSM_PROBE_MS 200     /* default interval between probes of a down endpoint */

typedef struct creto_hsm_endpoint {
	char module[512];  /* path or "p11-kit:NAME" */
	char serial[17];   /* "" for any */
	unsigned long slot_id;
	int has_slot_id;
} creto_hsm_endpoint;

/* Parse "MODULE[,slot-id=N][,serial=S]" into *out.  MODULE must be an
 * absolute path or p11-kit:NAME; an unknown, repeated or empty option is
 * CRETO_EUSAGE quoting it. */
int creto_hsm_endpoint_parse(const char *spec, creto_hsm_endpoint *out, creto_err *e) CRETO_WUR;
/* "MODULE[,slot-id=N][,serial=S]" as parsed (for messages and events). */
void creto_hsm_endpoint_format(const creto_hsm_endpoint *ep, char *out, size_t cap);

/* What the URI leaves out when opening a token: command-line options or the
 * config file (src/keys/ fills it from creto_keys_opts).  Any field NULL;
 * a NULL opts means all NULL. */
typedef struct creto_hsm_opts {
	const char *module_path; /* PKCS#11 module (.so) */
	const char *pin_file;    /* file holding the user PIN */
	/* Where the token reports security events (a failed login: component
	 * "hsm", event "login", outcome "failed", reason the CKR_ name,
	 * subject the token label, fields "function" and "module"; never the
	 * PIN); NULL drops them.  The sink is copied into each handle opened
	 * with these options: its ctx must outlive them. */
	const creto_event_sink *events;
	/* Failover (failover.c): with nendpoints > 0 the token is reached
	 * through these endpoints instead of module_path (same token label
	 * and keys on each, replicated by the operator).  The sink also
	 * receives component "hsm", events "endpoint-down" (outcome "failed",
	 * reason the CKR_ name or "deadline"), "endpoint-up" (outcome "ok")
	 * and "failover" (outcome "ok", fields "from" and "to"), subject the
	 * token label, field "endpoint"; these come from the endpoints'
	 * threads, so the sink must be thread-safe. */
	const creto_hsm_endpoint *endpoints;
	size_t nendpoints;
	unsigned deadline_ms; /* one call's deadline; 0: CRETO_HSM_DEADLINE_MS */
	unsigned probe_ms;    /* probe interval of a down endpoint; 0: CRETO_HSM_PROBE_MS */
} creto_hsm_opts;

#define CRETO_HSM_LOGIN 1u /* log in as the user (needs a PIN) */
#define CRETO_HSM_RW 2u    /* read-write sessions (keygen, destroy, wrap) */

/* Open the token named by u (token=, serial=, slot-id=, ...; with no token
 * attribute the only initialised token) in the module named by u's
 * module-path / module-name, else opts->module_path, else
 * CRETO_HSM_DEFAULT_MODULE.  With CRETO_HSM_LOGIN the PIN comes from u's
 * pin-source (file:PATH or an absolute path), else opts->pin_file, read
 * into a fixed buffer (O_NOFOLLOW, regular file) and wiped.  A URI with a
 * pin-value attribute is CRETO_EUSAGE with or without CRETO_HSM_LOGIN (a
 * URI is argv: PINs come only from files).  The PIN is kept (wiped on close)
 * only to log in again in a forked child.  opts may be NULL. */
int creto_hsm_open(const creto_p11_uri *u, const creto_hsm_opts *opts, unsigned flags,
		   creto_hsm **out, creto_err *e) CRETO_WUR;
/* Parse uri then creto_hsm_open; *parsed (optional) receives the URI. */
int creto_hsm_open_uri(const char *uri, const creto_hsm_opts *opts, unsigned flags,
		       creto_hsm **out, creto_p11_uri **parsed, creto_err *e) CRETO_WUR;
/* Close the handle's sessions; the module stays initialised while other
 * handles use it.  Accepts NULL. */
void creto_hsm_close(creto_hsm *h);
/* The token's label (trailing spaces removed); valid while h lives. */
const char *creto_hsm_token_label(const creto_hsm *h);
/* The module path in use; valid while h lives. */
const char *creto_hsm_module_path(const creto_hsm *h);

/* Initialise a fresh token (C_InitToken on the first slot without an
 * initialised token, then C_InitPIN as SO).  PINs are read from files and
 * wiped.  A token that already carries label is CRETO_EUSAGE. */
int creto_hsm_init_token(const char *module_path, const char *label, const char *so_pin_file,
			 const char *user_pin_file, creto_err *e) CRETO_WUR;

/* Test seam (fault injection): make module path `path` resolve to getfn (a
 * C_GetFunctionList) instead of dlopen.  NULL getfn removes it. */
void creto_hsm_module_override(const char *path, void *getfn);

/* ---- keys ---- */

typedef enum creto_hsm_keytype {
	CRETO_HSM_KT_NONE = 0,
	CRETO_HSM_KT_EC_P256,
	CRETO_HSM_KT_EC_P384,
	CRETO_HSM_KT_ED25519,
	CRETO_HSM_KT_AES256,
} creto_hsm_keytype;

/* "ec-p256", "ec-p384", "ed25519", "aes-256" and back (NONE if unknown). */
const char *creto_hsm_keytype_name(creto_hsm_keytype t);
creto_hsm_keytype creto_hsm_keytype_from_name(const char *name);

#define CRETO_HSM_EXTRACTABLE 1u /* keygen: CKA_EXTRACTABLE true, CKA_SENSITIVE false */

/* Generate a token key (pair) labelled label with a random 8-byte CKA_ID
 * (returned in id when not NULL).  Private and secret keys are sensitive and
 * non-extractable unless CRETO_HSM_EXTRACTABLE; AES keys may wrap/unwrap
 * only.  An object already carrying label is CRETO_EUSAGE. */
int creto_hsm_keygen(creto_hsm *h, creto_hsm_keytype t, const char *label, unsigned flags,
		     uint8_t id[CRETO_HSM_KEYID_BYTES], creto_err *e) CRETO_WUR;

/* One object on the token, as `creto hsm list` shows it. */
typedef struct creto_hsm_obj {
	creto_p11_type type;
	creto_hsm_keytype keytype; /* NONE for other objects / curves */
	char label[CRETO_HSM_LABEL_MAX + 1];
	uint8_t id[CRETO_HSM_ID_MAX];  /* CKA_ID */
	size_t idlen;
	int sensitive, extractable;
	/* The creto key id (creto_pubkey_id: what `key id`, `hsm pub` and
	 * trust roots show) of a signing key pair's public and private
	 * objects; "" for other objects.  For a hybrid key, the id of its
	 * classical half. */
	char key_id[CRETO_KEYID_HEXLEN + 1];
} creto_hsm_obj;

/* Every object visible to the (logged-in) handle, sorted by label then
 * type.  *objs is malloc'ed (free()). */
int creto_hsm_list(creto_hsm *h, creto_hsm_obj **objs, size_t *n, creto_err *e) CRETO_WUR;

/* A key found on the token by label/id (and type). */
typedef struct creto_hsm_key creto_hsm_key;

/* Find the object of class want (u's type= must agree when given) of the one
 * key u names: the objects matching u's object=/id=/type= must belong to
 * exactly one key (same CKA_LABEL and CKA_ID, one family: key pair, secret
 * key or data; docs/keys.md §1).  None is CRETO_EUSAGE ("key 'x' (private
 * key) not found on token 'enclave'"); objects of two keys are CRETO_EUSAGE
 * ("... is ambiguous ...: add id= to the URI"), even when only one has class
 * want.  The key keeps h alive (h must outlive it). */
int creto_hsm_key_find(creto_hsm *h, const creto_p11_uri *u, creto_p11_type want,
		       creto_hsm_key **out, creto_err *e) CRETO_WUR;
void creto_hsm_key_free(creto_hsm_key *k);
creto_hsm_keytype creto_hsm_key_type(const creto_hsm_key *k);
/* The found object's CKA_LABEL ("" if none) and CKA_ID; valid while k lives. */
const char *creto_hsm_key_label(const creto_hsm_key *k);
const uint8_t *creto_hsm_key_id(const creto_hsm_key *k, size_t *len);

/* The creto key id (creto_pubkey_id) of the key pair named by u, from its
 * public key as creto_hsm_pub_raw reads it.  Errors as creto_hsm_pub_raw. */
int creto_hsm_pub_id(creto_hsm *h, const creto_p11_uri *u, char out[CRETO_KEYID_HEXLEN + 1],
		     creto_err *e) CRETO_WUR;

/* Raw public key of the key pair named by u (from the public object, or the
 * private object's CKA_EC_POINT): Ed25519 32 bytes, EC SEC1 uncompressed
 * point.  *alg is ED25519 / ECDSA_P256 / ECDSA_P384. */
int creto_hsm_pub_raw(creto_hsm *h, const creto_p11_uri *u, creto_alg *alg, uint8_t *raw,
		      size_t cap, size_t *len, creto_err *e) CRETO_WUR;

/* Primitive signature of msg with a private key: Ed25519 -> CKM_EDDSA
 * (64 bytes); ECDSA -> SHA-256/SHA-384 on the host, CKM_ECDSA, r||s
 * (64/96 bytes).  Thread-safe: concurrent calls use different sessions. */
int creto_hsm_key_sign(creto_hsm_key *k, const uint8_t *msg, size_t msglen, uint8_t *sig,
		       size_t sigcap, size_t *siglen, creto_err *e) CRETO_WUR;

/* Destroy the objects of the one key u names (object=/id=, type=): both
 * halves of a key pair, *n counts them.  None is CRETO_EUSAGE; a URI
 * matching objects of two keys is CRETO_EUSAGE and destroys nothing. */
int creto_hsm_destroy(creto_hsm *h, const creto_p11_uri *u, size_t *n, creto_err *e) CRETO_WUR;

/* Wrap / unwrap with an open handle (see creto_hsm_wrap below). */
int creto_hsm_wrap_with(creto_hsm *h, const creto_p11_uri *u, const uint8_t *key, size_t len,
			uint8_t **wrapped, size_t *wrappedlen, creto_err *e) CRETO_WUR;
int creto_hsm_unwrap_with(creto_hsm *h, const creto_p11_uri *u, const uint8_t *wrapped,
			  size_t wrappedlen, uint8_t *key, size_t keycap, size_t *keylen,
			  creto_err *e) CRETO_WUR;

/* ---- mechanisms (mech.c) ---- */

#define CRETO_HSM_MF_SIGN 0x001u
#define CRETO_HSM_MF_VERIFY 0x002u
#define CRETO_HSM_MF_ENCRYPT 0x004u
#define CRETO_HSM_MF_DECRYPT 0x008u
#define CRETO_HSM_MF_DIGEST 0x010u
#define CRETO_HSM_MF_WRAP 0x020u
#define CRETO_HSM_MF_UNWRAP 0x040u
#define CRETO_HSM_MF_GENERATE 0x080u
#define CRETO_HSM_MF_GENERATE_KEY_PAIR 0x100u
#define CRETO_HSM_MF_DERIVE 0x200u

/* One mechanism the token's slot offers (C_GetMechanismInfo). */
typedef struct creto_hsm_mech {
	unsigned long type;             /* CKM_ value */
	unsigned long min_key, max_key; /* as the module reports them */
	unsigned flags;                 /* CRETO_HSM_MF_* */
} creto_hsm_mech;

/* The mechanisms of h's slot, sorted by type (C_GetMechanismList, then
 * C_GetMechanismInfo for each).  *out is malloc'ed (free()). */
int creto_hsm_mechanisms(creto_hsm *h, creto_hsm_mech **out, size_t *n, creto_err *e) CRETO_WUR;
/* "CKM_ECDSA", ...; "CKM_0x.." (buf used, 32 bytes) for others. */
const char *creto_hsm_mech_name(unsigned long type, char buf[32]);
/* *offered = whether h's slot offers type with all of flags. */
int creto_hsm_mech_offered(creto_hsm *h, unsigned long type, unsigned flags, int *offered,
			   creto_err *e) CRETO_WUR;
/* The mechanism and flags creto uses a key type with: CKM_ECDSA (sign) for
 * EC keys, CKM_EDDSA (sign) for Ed25519, CKM_AES_KEY_WRAP_PAD
 * (wrap+unwrap) for AES-256.  0 for NONE. */
int creto_hsm_keytype_mech(creto_hsm_keytype kt, unsigned long *type, unsigned *flags);
/* Refuse (CRETO_EUSAGE) key k when h's module does not offer the
 * mechanism creto needs for it, in one line naming the token, module, key,
 * mechanism and the fix (an ECDSA key for a remote HSM; the AES wrap key
 * on a local token). */
int creto_hsm_key_check(creto_hsm *h, const creto_hsm_key *k, creto_err *e) CRETO_WUR;

/* ---- failover across endpoints (failover.c) ----
 * One signing key (the URI's object=/id=) on the same token reached through
 * opts->endpoints.  Every PKCS#11 call runs on the endpoint's own thread
 * (SIGPIPE blocked there: p11-kit-client writes to its socket without
 * MSG_NOSIGNAL) and the caller waits at most opts->deadline_ms: a call that
 * is late, or fails with CKR_DEVICE_ERROR, CKR_DEVICE_REMOVED,
 * CKR_TOKEN_NOT_PRESENT, CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED,
 * CKR_CRYPTOKI_NOT_INITIALIZED, CKR_SLOT_ID_INVALID or CKR_GENERAL_ERROR
 * (p11-kit reports a broken socket as CKR_DEVICE_ERROR) marks the endpoint
 * down, and the operation is retried once on another endpoint that is up.
 * Any other failure (CKR_PIN_INCORRECT, CKR_KEY_HANDLE_INVALID,
 * CKR_SIGNATURE_INVALID, CKR_MECHANISM_INVALID, ...) is returned as it is,
 * never retried.  A down endpoint's thread probes it every opts->probe_ms
 * (reconnecting: C_Finalize + C_Initialize, a session, the login) until it
 * answers; the active endpoint stays where it is until it fails. */
typedef struct creto_hsm_ha creto_hsm_ha;

#define CRETO_HSM_HA_KEYS_MAX 4 /* keys of one token sharing a group's endpoints */

/* Open the keys uris[0..nkeys) name (private keys of one token: every URI
 * names the same token=, or none does) on every endpoint of opts, in
 * order, each within the deadline: each key found, its mechanism offered
 * (creto_hsm_key_check) and its creto key id equal to the first
 * answering endpoint's.  A refusal (wrong PIN, key missing, mechanism
 * missing, key id differing) is returned at once, naming the endpoint; an
 * endpoint that is down or late is marked down, to be probed once the
 * group is started.  None answering is CRETO_EOP.  The PIN comes from the
 * first URI's pin-source, else opts->pin_file.
 *
 * No thread is left running when this returns: each endpoint is opened on
 * a short-lived thread joined before the next, and a call that misses the
 * deadline has the sockets it opened shut down (so a hung p11-kit server
 * cannot hold it) and is joined after at most one more deadline; that is
 * done only while the caller runs no other thread (a call that still does
 * not return is left running, detached).  So a daemon opens its keys,
 * applies a sandbox that needs a single-threaded process, then calls
 * creto_hsm_ha_start.  Until then, signing works the same way (one
 * short-lived thread per call, joined). */
int creto_hsm_ha_open_keys(const char *const *uris, size_t nkeys, const creto_hsm_opts *opts,
			   creto_hsm_ha **out, creto_err *e) CRETO_WUR;
/* Start the endpoints' worker threads (every later call runs there; a
 * down endpoint is probed).  Idempotent. */
int creto_hsm_ha_start(creto_hsm_ha *g, creto_err *e) CRETO_WUR;
/* creto_hsm_ha_open_keys with the one key uri, then creto_hsm_ha_start
 * (commands, and the signer of creto_hsm_open_signer). */
int creto_hsm_ha_open(const char *uri, const creto_hsm_opts *opts, creto_hsm_ha **out,
		      creto_err *e) CRETO_WUR;
/* Sign like creto_hsm_key_sign with key `key` (an index into the URIs
 * given to open) through the active endpoint, failing over as above.
 * Thread-safe.  creto_hsm_ha_sign signs with key 0. */
int creto_hsm_ha_sign_key(creto_hsm_ha *g, size_t key, const uint8_t *msg, size_t msglen,
			  uint8_t *sig, size_t sigcap, size_t *siglen, creto_err *e) CRETO_WUR;
int creto_hsm_ha_sign(creto_hsm_ha *g, const uint8_t *msg, size_t msglen, uint8_t *sig,
		      size_t sigcap, size_t *siglen, creto_err *e) CRETO_WUR;
/* A signer (creto/sig.h, kind "pkcs11") for key `key` of g, failing over
 * as creto_hsm_ha_sign_key.  It borrows g: free it before closing g. */
int creto_hsm_ha_signer(creto_hsm_ha *g, size_t key, creto_signer **out, creto_err *e) CRETO_WUR;
/* Key 0's public key (raw, as creto_hsm_pub_raw), algorithm and creto
 * key id; valid while g lives. */
const uint8_t *creto_hsm_ha_pub(const creto_hsm_ha *g, creto_alg *alg, size_t *len);
const char *creto_hsm_ha_key_id(const creto_hsm_ha *g);
const char *creto_hsm_ha_token_label(const creto_hsm_ha *g);

typedef struct creto_hsm_ha_stats {
	uint64_t ops;       /* creto_hsm_ha_sign calls */
	uint64_t failed;    /* of those, returned an error */
	uint64_t retries;   /* of those, tried a second endpoint */
	uint64_t failovers; /* changes of the active endpoint */
	unsigned max_attempts; /* most endpoints one call tried (at most 2) */
} creto_hsm_ha_stats;

typedef struct creto_hsm_ha_endpoint_status {
	char name[600];   /* creto_hsm_endpoint_format */
	int up, active;
	uint64_t downs;   /* times marked down */
	char reason[64];  /* why it went down last ("" if never) */
} creto_hsm_ha_endpoint_status;

void creto_hsm_ha_stats_get(creto_hsm_ha *g, creto_hsm_ha_stats *st);
size_t creto_hsm_ha_endpoints(const creto_hsm_ha *g);
void creto_hsm_ha_endpoint_get(creto_hsm_ha *g, size_t i, creto_hsm_ha_endpoint_status *st);
/* Stop the endpoints' threads and close their tokens.  A thread still
 * inside a hung call is left to finish it and clean up after itself.
 * Signers from creto_hsm_ha_signer must be freed first.  Accepts NULL. */
void creto_hsm_ha_close(creto_hsm_ha *g);

/* ---- the envelope: AES-256-GCM under an HSM-wrapped data key ----
 * The one seal/unseal for secrets kept outside the HSM under its key (the
 * hybrid key's ML-DSA seed, the NHI backup): a fresh 32-byte data key and a
 * fresh 96-bit nonce per envelope, the data key wrapped by a key wrapper
 * (an HSM AES key, CKM_AES_KEY_WRAP_PAD), the caller's header as associated
 * data, a 128-bit tag.  The caller lays out its own file (docs/keys.md §4,
 * docs/nhi.md), putting the wrapped key and nonce into the header it
 * authenticates. */
#define CRETO_HSM_SEAL_KEY 32
#define CRETO_HSM_SEAL_NONCE 12
#define CRETO_HSM_SEAL_TAG 16

/* What wraps and unwraps a data key (RFC 5649 semantics): an HSM AES key
 * (creto_hsm_keywrap_with) or, in tests, anything equivalent.  wrap
 * returns a malloc'ed blob; unwrap fails (CRETO_EREJECT) on a wrong key or
 * a tampered blob. */
typedef struct creto_hsm_keywrap {
	int (*wrap)(void *ctx, const uint8_t *key, size_t len, uint8_t **wrapped, size_t *wlen,
		    creto_err *e);
	int (*unwrap)(void *ctx, const uint8_t *wrapped, size_t wlen, uint8_t *key, size_t cap,
		      size_t *klen, creto_err *e);
	void *ctx;
	creto_hsm *h;            /* creto_hsm_keywrap_with only */
	const creto_p11_uri *u;  /* creto_hsm_keywrap_with only */
} creto_hsm_keywrap;

/* Fill kw to wrap with the AES key named by u through the open handle h
 * (both borrowed: they must outlive kw). */
void creto_hsm_keywrap_with(creto_hsm_keywrap *kw, creto_hsm *h, const creto_p11_uri *u);

/* One envelope's data key and nonce. */
typedef struct creto_hsm_envelope {
	uint8_t key[CRETO_HSM_SEAL_KEY];     /* secret: wiped by creto_hsm_envelope_clear */
	uint8_t nonce[CRETO_HSM_SEAL_NONCE];
	uint8_t *wrapped;                    /* creto_hsm_envelope_new: the wrapped key (malloc'ed) */
	size_t wrappedlen;
} creto_hsm_envelope;

/* Start sealing: a fresh random data key and nonce, the key wrapped with
 * kw into env->wrapped.  Errors are kw's (the caller adds context); env is
 * cleared on failure. */
int creto_hsm_envelope_new(const creto_hsm_keywrap *kw, creto_hsm_envelope *env,
			   creto_err *e) CRETO_WUR;
/* Start unsealing: unwrap the data key from wrapped[0..wlen) with kw and
 * take nonce.  A failed unwrap keeps kw's error untouched (the caller adds
 * context); a data key that is not 32 bytes is CRETO_EREJECT.  env is
 * cleared on failure. */
int creto_hsm_envelope_open(const creto_hsm_keywrap *kw, const uint8_t *wrapped, size_t wlen,
			    const uint8_t nonce[CRETO_HSM_SEAL_NONCE], creto_hsm_envelope *env,
			    creto_err *e) CRETO_WUR;
/* Encrypt in[0..len) into out (may be in) with aad authenticated; the tag
 * into tag.  Any length up to 2^36 bytes (done in chunks). */
int creto_hsm_seal(const creto_hsm_envelope *env, const uint8_t *aad, size_t aadlen,
		   const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[CRETO_HSM_SEAL_TAG],
		   creto_err *e) CRETO_WUR;
/* Decrypt in[0..len) into out (may be in) and check tag over aad and the
 * ciphertext: a mismatch is CRETO_EREJECT "authentication failed" and out
 * is wiped, so no unauthenticated plaintext is ever left. */
int creto_hsm_unseal(const creto_hsm_envelope *env, const uint8_t *aad, size_t aadlen,
		     const uint8_t *in, size_t len, const uint8_t tag[CRETO_HSM_SEAL_TAG],
		     uint8_t *out, creto_err *e) CRETO_WUR;
/* Wipe the data key, free the wrapped key.  Accepts NULL. */
void creto_hsm_envelope_clear(creto_hsm_envelope *env);

/* ---- hybrid HSM keys (docs/keys.md §4) ---- */

/* Make a hybrid key: the classical key pair labelled label (Ed25519 for
 * CRETO_ALG_HYBRID, P-384 for CRETO_ALG_HYBRID_CNSA2), an AES-256 key
 * "<label>.pq-wrap", and the file path (O_EXCL, 0600) holding the ML-DSA
 * seed under AES-256-GCM with a data key wrapped by that AES key.  On any
 * failure nothing is left behind (generated keys are destroyed).  A taken
 * label or an existing path is CRETO_EUSAGE.  key_id (may be NULL) receives
 * the hybrid key's creto key id. */
int creto_hsm_hybrid_keygen(creto_hsm *h, creto_alg alg, const char *label, const char *path,
			    char key_id[CRETO_KEYID_HEXLEN + 1], creto_err *e) CRETO_WUR;

/* ---- the contract src/keys/ and src/nhi/ code against ---- */

/* Open a signer for the key named by a pkcs11: URI.  With x-creto-pq=FILE
 * the signer is the hybrid of the HSM key and the wrapped ML-DSA key.
 * With opts->nendpoints > 0 the signer fails over between the endpoints
 * (creto_hsm_ha_open; a hybrid key is refused there: its ML-DSA half needs
 * AES key wrap, which remote modules lack). */
int creto_hsm_open_signer(const char *uri, const creto_hsm_opts *opts, creto_signer **out,
			  creto_err *e) CRETO_WUR;
/* Read the public key of the key named by a pkcs11: URI.  With
 * x-creto-pq=FILE, the hybrid public key: FILE must have been made for the
 * classical key found (token, label, id, algorithm), else CRETO_EREJECT;
 * when a PIN is given (pin-source or opts->pin_file) the user logs in and
 * FILE is unsealed through the HSM, so its ML-DSA public key is
 * authenticated (a tampered line is CRETO_EREJECT); without a PIN that
 * line is taken from FILE unauthenticated (docs/keys.md §4). */
int creto_hsm_open_pubkey(const char *uri, const creto_hsm_opts *opts, creto_pubkey **out,
			  creto_err *e) CRETO_WUR;

/* Wrap the secret key bytes key[0..len) under the AES key named by uri
 * (CKM_AES_KEY_WRAP_PAD, RFC 5649): the bytes are imported as a session
 * CKK_GENERIC_SECRET/CKK_AES object and wrapped.  *wrapped is malloc'ed. */
int creto_hsm_wrap(const char *uri, const creto_hsm_opts *opts, const uint8_t *key, size_t len,
		   uint8_t **wrapped, size_t *wrappedlen, creto_err *e) CRETO_WUR;
/* Inverse of creto_hsm_wrap: unwrap into an extractable session object and
 * return its value in key (keycap bytes); a wrong key or tampered blob is
 * CRETO_EREJECT.  The caller wipes key after use. */
int creto_hsm_unwrap(const char *uri, const creto_hsm_opts *opts, const uint8_t *wrapped,
		     size_t wrappedlen, uint8_t *key, size_t keycap, size_t *keylen,
		     creto_err *e) CRETO_WUR;

#endif
