<?php
// The front controller: every path no file answers ends here.
header('Content-Type: text/plain');
echo "front " . $_SERVER['REQUEST_URI'] . " script=" . $_SERVER['SCRIPT_NAME'] . "\n";
