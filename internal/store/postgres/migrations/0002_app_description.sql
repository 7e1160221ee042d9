-- A short text for users, shown under the application's tile in My Apps
-- (https://CLOUDNAME/).
ALTER TABLE applications ADD COLUMN description TEXT NOT NULL DEFAULT '';
