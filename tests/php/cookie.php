<?php
setcookie('sid', 'abc123', ['path' => '/', 'httponly' => true]);
header('X-Seen: ' . ($_COOKIE['theme'] ?? 'none'));
echo "cookie set\n";
