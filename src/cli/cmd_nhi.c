/* cmd_nhi.c - placeholder until the nhi group lands; replaced by its owner. */
#include "cli.h"

int cmd_nhi(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_usage_error("nhi: not built yet");
}
