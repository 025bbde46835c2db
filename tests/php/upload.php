<?php
// Each uploaded file's size and MD5, and the other form fields.
header('Content-Type: application/json');
$files = [];
foreach ($_FILES as $name => $f) {
    $files[$name] = ['size' => $f['size'], 'md5' => $f['error'] === 0 ? md5_file($f['tmp_name']) : null, 'error' => $f['error']];
}
echo json_encode(['files' => $files, 'post' => $_POST]);
