/* test_pkcs11_uri.c - the RFC 7512 parser and formatter: the RFC's own
 * examples, percent-decoding, and a refusal for every malformed shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "creto/hsm.h"

static creto_p11_uri *ok(const char *s)
{
	creto_p11_uri *u = NULL;
	creto_err e;
	creto_err_clear(&e);
	int rc = creto_p11_uri_parse(s, &u, &e);
	if (rc != CRETO_OK)
		fail_msg("'%s' refused: %s", s, e.msg);
	assert_non_null(u);
	return u;
}

static void refused(const char *s, const char *why)
{
	creto_p11_uri *u = NULL;
	creto_err e;
	creto_err_clear(&e);
	int rc = creto_p11_uri_parse(s, &u, &e);
	if (rc != CRETO_EUSAGE)
		fail_msg("'%s' accepted (rc %d), expected refusal", s, rc);
	assert_null(u);
	if (why != NULL && strstr(e.msg, why) == NULL)
		fail_msg("'%s': message '%s' lacks '%s'", s, e.msg, why);
}

/* Examples from RFC 7512 §3. */
static void test_rfc_examples(void **state)
{
	(void)state;
	creto_p11_uri *u = ok("pkcs11:");
	assert_null(u->token);
	creto_p11_uri_free(u);
	u = ok("pkcs11:object=my-pubkey;type=public");
	assert_string_equal(u->object, "my-pubkey");
	assert_int_equal(u->type, CRETO_P11_TYPE_PUBLIC);
	creto_p11_uri_free(u);
	u = ok("pkcs11:object=my-key;type=private?pin-source=file:/etc/token");
	assert_string_equal(u->pin_source, "file:/etc/token");
	assert_int_equal(u->type, CRETO_P11_TYPE_PRIVATE);
	creto_p11_uri_free(u);
	u = ok("pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;"
	       "model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;"
	       "serial=?pin-source=file:/etc/token_pin");
	assert_string_equal(u->token, "The Software PKCS#11 Softtoken");
	assert_string_equal(u->manufacturer, "Snake Oil, Inc.");
	assert_string_equal(u->model, "1.0");
	assert_string_equal(u->serial, "");
	assert_int_equal(u->type, CRETO_P11_TYPE_CERT);
	assert_true(u->has_id);
	assert_int_equal(u->idlen, 8);
	const uint8_t id[] = {0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91};
	assert_memory_equal(u->id, id, 8);
	creto_p11_uri_free(u);
	u = ok("pkcs11:object=my-sign-key;type=private?module-name=mypkcs11");
	assert_string_equal(u->module_name, "mypkcs11");
	creto_p11_uri_free(u);
	u = ok("pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1");
	assert_string_equal(u->module_path, "/mnt/libmypkcs11.so.1");
	creto_p11_uri_free(u);
	u = ok("pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin");
	assert_string_equal(u->pin_value, "the-pin");
	creto_p11_uri_free(u);
	u = ok("pkcs11:slot-description=Sun%20Metaslot");
	assert_string_equal(u->slot_description, "Sun Metaslot");
	creto_p11_uri_free(u);
	u = ok("pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;"
	       "library-version=1.23");
	assert_string_equal(u->library_version, "1.23");
	assert_string_equal(u->library_description, "Soft Token Library");
	creto_p11_uri_free(u);
	u = ok("pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert");
	assert_string_equal(u->token, "A name with a substring %;");
	creto_p11_uri_free(u);
	u = ok("pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert");
	assert_string_equal(u->token, "Name with a small A with acute: \xc3\xa1");
	creto_p11_uri_free(u);
	/* RFC 7512 §3's vendor example uses bare "vendor-aaa": unknown
	 * non-vendor path attributes must be refused, only "x-" ones pass. */
	refused("pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a", "unknown path attribute");
	u = ok("pkcs11:token=my-token;object=my-certificate;type=cert;x-vendor-aaa=value-a?pin-source=file:/etc/token_pin&x-vendor-bbb=value-b");
	assert_string_equal(u->pin_source, "file:/etc/token_pin");
	creto_p11_uri_free(u);
}

static void test_vendor_and_slots(void **state)
{
	(void)state;
	creto_p11_uri *u = ok("pkcs11:token=t;x-vendor=abc?x-opt=1&module-path=/a/b.so");
	assert_string_equal(u->token, "t");
	assert_string_equal(u->module_path, "/a/b.so");
	creto_p11_uri_free(u);
	u = ok("pkcs11:slot-manufacturer=Acme;slot-id=7;library-version=3");
	assert_true(u->has_slot_id);
	assert_int_equal(u->slot_id, 7);
	assert_string_equal(u->slot_manufacturer, "Acme");
	creto_p11_uri_free(u);
	/* id may hold any byte, NUL included */
	u = ok("pkcs11:id=%00%01%ff");
	assert_int_equal(u->idlen, 3);
	assert_int_equal(u->id[0], 0);
	assert_int_equal(u->id[2], 0xff);
	creto_p11_uri_free(u);
	/* reserved characters allowed in values */
	u = ok("pkcs11:object=a:b@c!$'()*+,=d?pin-source=file:///run/p/pin|x");
	assert_string_equal(u->object, "a:b@c!$'()*+,=d");
	assert_string_equal(u->pin_source, "file:///run/p/pin|x");
	creto_p11_uri_free(u);
	u = ok("pkcs11:object=x?");
	creto_p11_uri_free(u);
}

static void test_refusals(void **state)
{
	(void)state;
	refused("pkcs11", "not a pkcs11: URI");
	refused("PKCS11:token=a", "not a pkcs11: URI");
	refused("file:/x", "not a pkcs11: URI");
	refused("pkcs11:tokn=a", "unknown path attribute 'tokn'");
	refused("pkcs11:token=a;token=b", "appears twice");
	refused("pkcs11:object=a;object=a", "appears twice");
	refused("pkcs11:token=a?pin-source=/a&pin-source=/b", "appears twice");
	refused("pkcs11:token=a?pin-source=/a&pin-value=1", "must not both");
	refused("pkcs11:token=a?unknown=1", "unknown query attribute");
	refused("pkcs11:token=a?module-path=/x/y.so&module-path=/z.so", "appears twice");
	refused("pkcs11:token", "no name=value");
	refused("pkcs11:=a", "no name=value");
	refused("pkcs11:token=a;", "empty path attribute");
	refused("pkcs11:;token=a", "empty path attribute");
	refused("pkcs11:token=a?&pin-value=1", "empty query attribute");
	refused("pkcs11:token=a b", "must be percent-encoded");
	refused("pkcs11:token=a/b", "must be percent-encoded");
	refused("pkcs11:object=a?b", NULL); /* '?' starts the query: "b" has no value */
	refused("pkcs11:token=a%", "bad percent-encoding");
	refused("pkcs11:token=a%4", "bad percent-encoding");
	refused("pkcs11:token=a%zz", "bad percent-encoding");
	refused("pkcs11:token=a%00b", "NUL byte");
	refused("pkcs11:type=key", "type must be");
	refused("pkcs11:type=", "type must be");
	refused("pkcs11:slot-id=x1", "slot-id");
	refused("pkcs11:slot-id=", "slot-id");
	refused("pkcs11:slot-id=99999999999999999999", "slot-id");
	refused("pkcs11:library-version=1.", "library-version");
	refused("pkcs11:library-version=a", "library-version");
	refused("pkcs11:library-version=1.2.3", "library-version");
	{
		char lab[400] = "pkcs11:object=";
		memset(lab + 14, 'o', 256);
		refused(lab, "longer than 255");
	}
	refused("pkcs11:to_ken=a", "bad attribute name");
	refused("pkcs11:token=a\x01", "byte 0x01");
	/* over-long URI */
	char *big = malloc(CRETO_HSM_URI_MAX + 16);
	memcpy(big, "pkcs11:object=", 14);
	memset(big + 14, 'a', CRETO_HSM_URI_MAX);
	big[CRETO_HSM_URI_MAX + 14] = '\0';
	refused(big, "longer than");
	free(big);
}

static void test_format(void **state)
{
	(void)state;
	const uint8_t id[] = {0x00, 0xab};
	char *s = creto_p11_uri_format("my token", "key;1", id, 2, CRETO_P11_TYPE_PRIVATE);
	assert_string_equal(s, "pkcs11:token=my%20token;object=key%3B1;id=%00%AB;type=private");
	creto_p11_uri *u = ok(s);
	assert_string_equal(u->token, "my token");
	assert_string_equal(u->object, "key;1");
	assert_int_equal(u->idlen, 2);
	creto_p11_uri_free(u);
	free(s);
	s = creto_p11_uri_format(NULL, "k", NULL, 0, CRETO_P11_TYPE_ANY);
	assert_string_equal(s, "pkcs11:object=k");
	free(s);
	assert_string_equal(creto_p11_type_name(CRETO_P11_TYPE_SECRET_KEY), "secret-key");
	assert_null(creto_p11_type_name(CRETO_P11_TYPE_ANY));
}

/* creto_p11_uri_path: the path as given, after the one parser checked the
 * whole URI (issue 11 §9: nhi/backup.c no longer cuts URIs by hand). */
static void test_uri_path(void **state)
{
	(void)state;
	char out[64];
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_p11_uri_path("pkcs11:object=k;token=t%20x?module-path=/m.so&pin-source=file:/p",
					    out, sizeof(out), &e),
			 CRETO_OK);
	assert_string_equal(out, "pkcs11:object=k;token=t%20x");
	assert_int_equal(creto_p11_uri_path("pkcs11:token=t;object=nhi-backup-key", out, sizeof(out), &e),
			 CRETO_OK);
	assert_string_equal(out, "pkcs11:token=t;object=nhi-backup-key");
	/* a PIN value never reaches the path, and a URI the parser refuses has
	 * no path at all */
	assert_int_equal(creto_p11_uri_path("pkcs11:token=t?pin-value=1234", out, sizeof(out), &e),
			 CRETO_OK);
	assert_string_equal(out, "pkcs11:token=t");
	assert_int_equal(creto_p11_uri_path("pkcs11:token=t;pin-value=1234", out, sizeof(out), &e),
			 CRETO_EUSAGE);
	assert_string_equal(out, "");
	assert_int_equal(creto_p11_uri_path("pkcs11:token=a;token=b", out, sizeof(out), &e),
			 CRETO_EUSAGE);
	assert_int_equal(creto_p11_uri_path("token=t", out, sizeof(out), &e), CRETO_EUSAGE);
	assert_int_equal(creto_p11_uri_path("pkcs11:token=t;object=a-rather-long-label-that-overflows-the-buffer",
					    out, 32, &e),
			 CRETO_EUSAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_examples),
		cmocka_unit_test(test_vendor_and_slots),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_uri_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
