<?php
// What the script was given: CGI variables, query, form, cookies, body.
header('Content-Type: application/json');
$keys = ['SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO', 'REQUEST_URI', 'QUERY_STRING', 'REQUEST_METHOD',
         'SERVER_NAME', 'SERVER_PORT', 'REMOTE_ADDR', 'HTTPS', 'HTTP_X_TEST', 'HTTP_PROXY', 'CONTENT_TYPE',
         'CONTENT_LENGTH', 'DOCUMENT_ROOT', 'APP_ENV', 'HTTP_HOST', 'SERVER_PROTOCOL'];
$server = [];
foreach ($keys as $k) {
    $server[$k] = $_SERVER[$k] ?? null;
}
echo json_encode([
    'server' => $server,
    'get' => $_GET,
    'post' => $_POST,
    'cookie' => $_COOKIE,
    'body_length' => strlen(file_get_contents('php://input')),
]);
