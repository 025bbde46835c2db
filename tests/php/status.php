<?php
http_response_code(404);
header('X-App: missing');
echo "no such thing\n";
