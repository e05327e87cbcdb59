/* cmd_hsm.c - placeholder until the hsm group lands; replaced by its owner. */
#include "cli.h"

int cmd_hsm(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_usage_error("hsm: not built yet");
}
