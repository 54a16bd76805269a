-- Test users, all password-protected (mysql_native_password over TCP):
--   certcache / s3cr3t-my-pw   all privileges on database certcache
--   limited / limited-my-pw    may read one unrelated table of certcache,
--                              so it can connect there but use no other table
--   special / p@ss:w/rd?#%&=() x   all privileges on certcache (a password
--                              that needs escaping in a URL)
CREATE DATABASE IF NOT EXISTS certcache;
CREATE TABLE IF NOT EXISTS certcache.unrelated (x INT);
CREATE USER IF NOT EXISTS 'certcache'@'%' IDENTIFIED BY 's3cr3t-my-pw';
GRANT ALL PRIVILEGES ON certcache.* TO 'certcache'@'%' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'limited'@'%' IDENTIFIED BY 'limited-my-pw';
GRANT SELECT ON certcache.unrelated TO 'limited'@'%';
CREATE USER IF NOT EXISTS 'special'@'%' IDENTIFIED BY 'p@ss:w/rd?#%&=() x';
GRANT ALL PRIVILEGES ON certcache.* TO 'special'@'%';
