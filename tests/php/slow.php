<?php
usleep(50000);
echo "slow ok\n";
