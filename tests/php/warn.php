<?php
error_log("peregrine-test-stderr-line");
echo "warned\n";
