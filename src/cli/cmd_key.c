/* cmd_key.c - placeholder until the key/sign/verify commands land; replaced by its owner. */
#include "cli.h"

int cmd_key(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_usage_error("key: not built yet");
}
int cmd_sign(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_usage_error("sign: not built yet");
}
int cmd_verify(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_usage_error("verify: not built yet");
}
