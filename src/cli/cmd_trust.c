/* cmd_trust.c - placeholder until the trust group lands; replaced by its owner. */
#include "cli.h"

int cmd_trust(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_usage_error("trust: not built yet");
}
