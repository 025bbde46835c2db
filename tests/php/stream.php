<?php
// Three parts, each flushed, 300 ms apart.
header('Content-Type: text/plain');
for ($i = 0; $i < 3; $i++) {
    echo "part $i\n";
    flush();
    usleep(300000);
}
